"""The pipeline that ``dodo.py`` and ``noxfile.py`` call: one package per stage of ``doit list``
(build, scan, deploy, bench, security) and ``core``, the plumbing they share. A stage imports
``core`` and ``tunnel``, never another stage's internals; see docs/architecture.md."""
