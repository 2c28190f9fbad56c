"""bitbucket-pipeline-runner (PyPI, pinned in requirements-dev.txt), with the three parts of Pipelines' pipe command
line that its 0.6.3 leaves out; otherwise its own CLI: `python -m harness.pipelines_runner run PIPELINE ...`.

The runner runs `pipe:` as `docker run … --env=DOCKER_HOST="tcp://host.docker.internal:2375" … IMAGE` inside the
docker service (`Pipe.as_cmd`), but without Pipelines'
`--add-host="host.docker.internal:$BITBUCKET_DOCKER_HOST_INTERNAL"`, so no pipe can reach the daemon
(`Failed to resolve 'host.docker.internal'`), and without `BITBUCKET_PIPE_SHARED_STORAGE_DIR`, where a
pipe leaves files for later commands of the step, and without BITBUCKET_TAG, which the runner does not know
(it has no tag builds: the run's env file gives the step one, passed on only when set, as on a tag build).
These are added here, nothing else; BITBUCKET_DOCKER_HOST_INTERNAL comes from the run's env file
(`host-gateway`: the docker service's own address, as the nested daemon resolves it). docs/PIPELINES.md lists
every difference.
"""
from __future__ import annotations

from pipeline_runner import cli
from pipeline_runner.config import config
from pipeline_runner.models import Pipe

# Pipelines' path for it: under the clone, in the directory the runner's clone already excludes from git.
SHARED_STORAGE_DIR = f"{config.build_dir}/.bitbucket/pipelines/generated/pipeline/pipes"
ANCHOR = " --label=org.bitbucket.pipelines.system=true"
ADDED = ('--add-host="host.docker.internal:$BITBUCKET_DOCKER_HOST_INTERNAL"',
         f'--env=BITBUCKET_PIPE_SHARED_STORAGE_DIR="{SHARED_STORAGE_DIR}"',
         '${BITBUCKET_TAG+"--env=BITBUCKET_TAG=$BITBUCKET_TAG"}')

_runner_as_cmd = Pipe.as_cmd


def as_cmd(pipe: Pipe) -> str:
    command = _runner_as_cmd(pipe)
    head, anchor, tail = command.partition(ANCHOR)
    if not anchor:  # another runner version: fail, never run a pipe that cannot reach its daemon
        raise RuntimeError(f"the runner's pipe command has no `{ANCHOR.strip()}` to add to: {command[:200]}")
    return f"{head}{anchor} {' '.join(ADDED)}{tail}"


Pipe.as_cmd = as_cmd

if __name__ == "__main__":
    cli.main()
