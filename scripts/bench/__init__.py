"""``doit bench`` and the service benchmark: one harness for both.

Every server is a container of what ships (the image, its Python, event loop and settings,
run with the compose file's limits), loaded by wrk from this host:

    options    the one options type (``doit bench`` variables, the service command's flags)
    servers    the containers: service, ceiling (raw ASGI on the same server), stock (Quart on
               the Hypercorn CLI, the same Python and wheels)
    rounds     the servers measured one after another, rotated, and paired by round
    run        the phases (sweep, soak, holds, workers, replicas) and the doit step
    report     what a run measured; render shows it; gate judges it against a baseline
    service    ``python -m scripts.bench.service``: the service against stock, with targets
    image      ``python -m scripts.bench.image``: size, start time, rebuild, reproducibility
    stats, wrk, loadgen, idle   reading the engine's stats, driving wrk, holding idle clients
"""
