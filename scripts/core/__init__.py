"""The plumbing every stage shares: nothing here knows about a particular doit task.

proc      external programs: argv lists, timeouts, "tool missing" with how to install it
engine    the Docker engine and the CLIs that drive it (BuildKit, compose)
settings  the one place that reads the environment
options   doit's command-line variables, declared once by the options class they belong to
errors    the pipeline's exceptions, under WorkflowError
paths     where things are in the checkout and under build/
checks    one check with its evidence: verify, security, audit and the bench gate use it
poll      the one bounded polling loop
cli       how dodo.py runs a step (logging, one-line errors)
"""
