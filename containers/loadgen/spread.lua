-- Spread wrk's threads over every address the target name resolves to.
-- wrk resolves the host once and sends every connection to the first address; a swarm service
-- in dnsrr mode (or a compose service with replicas) resolves to one address per replica, so
-- without this all the load would land on one replica. Thread i gets address i mod N, so with
-- as many threads as replicas (or a multiple) each replica gets an equal share.
local addrs = nil
local next_index = 0

function setup(thread)
  if addrs == nil then
    addrs = wrk.lookup(wrk.host, wrk.port or "http")
  end
  thread.addr = addrs[(next_index % #addrs) + 1]
  next_index = next_index + 1
end
