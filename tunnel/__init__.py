"""Everything Cloudflare: cloudflared ingress config (model, validator, matcher), provisioning.

Entry points other code calls:

* :func:`tunnel.validate.check_file` / :func:`tunnel.validate.load_valid_config`
* :func:`tunnel.model.render_yaml` / :func:`tunnel.model.render_remote`
* :func:`tunnel.match.match_url`
* :func:`tunnel.spec.load_spec`, :func:`tunnel.provision.provision`,
  :func:`tunnel.destroy.destroy` (they read :mod:`tunnel.account` and check
  :mod:`tunnel.plans` before they write)
* :func:`tunnel.waf.check_rules` (the WAF static check for the security report)
"""
