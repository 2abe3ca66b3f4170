"""``doit security``: the image and container audit, network isolation, the header grade, the
WAF (statically, and at the edge in tunnel mode), the attack simulation and the churn flood,
one report (``run`` is the step; each other module is one section or what it needs)."""
