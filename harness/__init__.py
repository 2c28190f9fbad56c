"""The real processes and images that both test/ and bench/ start on this machine, and the clients both use.

The embedded registry (`registry_process`) with the accounts every config uses (`accounts`), distribution
2.8 as the reference registry (`reference_registry`), a second, fresh dockerd (`second_daemon`), images
built offline into a daemon (`docker_images`, `layered_images`) and a plain HTTP client of the registry's
pages (`ui_client`). Nothing here knows pytest: failures raise, and the callers (test fixtures, bench
phases) decide what a failure means.
"""
