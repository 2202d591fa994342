"""docker-py against a Shoal manager: services, secrets, configs, a node,
a network and the swarm, created, inspected, updated, scaled and removed
with the SDK's defaults (its bodies carry null for unset fields and
lower-case mode keys). Prints one line per check; exits 1 if one failed.
Run by e2e/tests/sdk_docker_py.rs with the socket path as argument."""
import sys

import docker
from docker.types import ServiceMode, EndpointSpec, RestartPolicy, UpdateConfig, Resources, SecretReference, DNSConfig
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="1.44")
out = []
def check(what, cond):
    out.append(("ok  " if cond else "FAIL") + " " + what)

# secrets/configs
sec = c.secrets.create(name="pw", data="s3cret", labels={"Env": "prod"})
check("secret create/inspect", c.secrets.get(sec.id).name == "pw" and c.secrets.get(sec.id).attrs["Spec"]["Labels"] == {"Env": "prod"})
cfg = c.configs.create(name="conf", data="x=1")
check("config create", c.configs.get(cfg.id).name == "conf")

svc = c.services.create("busybox", command="sleep 1000", name="x1")
s = c.services.get(svc.id)
check("minimal create: replicas 1", s.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}})
check("minimal create: command", s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Command"] == ["sleep", "1000"])

# Host-mode publishing: Shoal has no routing mesh yet.
svc2 = c.services.create("busybox", command=["sleep", "1000"], name="x5", mode=ServiceMode("replicated", 5),
    labels={"Team": "a"}, env=["A=1"], mounts=["cache:/cache"], endpoint_spec=EndpointSpec(ports={8080: (80, "tcp", "host")}),
    restart_policy=RestartPolicy(condition="on-failure", max_attempts=3), update_config=UpdateConfig(parallelism=2),
    resources=Resources(mem_limit=64 * 1024 * 1024), dns_config=DNSConfig(nameservers=["8.8.8.8"]),
    secrets=[SecretReference(sec.id, "pw")], constraints=["node.role==worker"])
s2 = c.services.get(svc2.id)
spec = s2.attrs["Spec"]
check("mode replicated 5", spec["Mode"] == {"Replicated": {"Replicas": 5}})
check("labels", spec["Labels"] == {"Team": "a"})
check("restart policy", spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure")
check("ports", spec["EndpointSpec"]["Ports"][0]["PublishedPort"] == 8080)
check("secret ref", spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"] == "pw")

g = c.services.create("busybox", command="sleep 1000", name="g1", mode=ServiceMode("global"))
check("global mode", c.services.get(g.id).attrs["Spec"]["Mode"] == {"Global": {}})

s.scale(3)
s.reload()
check("scale to 3", s.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}})
s.update(env=["B=2"])
s.reload()
check("update env (fetch current spec)", s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") == ["B=2"]
      and s.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}})

n = [n for n in c.nodes.list() if n.attrs["Spec"]["Role"] == "worker"][0]
spec = dict(n.attrs["Spec"]); spec["Labels"] = {"zone": "a"}; spec["Availability"] = "drain"
n.update(spec); n.reload()
check("node update", n.attrs["Spec"]["Labels"] == {"zone": "a"} and n.attrs["Spec"]["Availability"] == "drain")

net = c.networks.create("backend", driver="overlay", attachable=True,
                        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.9.0.0/24")]))
check("network create", c.networks.get(net.id).attrs["IPAM"]["Config"][0]["Subnet"] == "10.9.0.0/24")

sw = c.swarm
sw.reload()
sw.update(task_history_retention_limit=2)
sw.reload()
check("swarm update", sw.attrs["Spec"]["Orchestration"]["TaskHistoryRetentionLimit"] == 2)

for x in (s, s2, c.services.get(g.id)):
    x.remove()
check("services removed", c.services.list() == [])
net.remove(); sec.remove(); cfg.remove()
print("\n".join(out))
sys.exit(0 if all(line.startswith("ok") for line in out) else 1)
