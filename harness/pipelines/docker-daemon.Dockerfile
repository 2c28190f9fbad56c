# The docker service of a Pipelines step, built offline: Debian 13's dockerd 26 (the closest Debian has to
# Pipelines' 25.0.5), its containerd and docker CLI (the runner checks readiness with `docker info` inside),
# the system's runc (Debian 13's needs glibc 2.38) on the tools base (iptables, libseccomp).
ARG BASE
FROM ${BASE}
COPY bin/ /usr/local/bin/
COPY dockerd-entrypoint.sh /usr/local/bin/dockerd-entrypoint.sh
VOLUME /var/lib/docker
ENTRYPOINT ["sh", "/usr/local/bin/dockerd-entrypoint.sh"]
