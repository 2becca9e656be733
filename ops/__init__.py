"""The project's own operations in Python: driving the Pulumi engine, the stacks, `make up`.

Everything here is tooling around the program in `infra/` (which platform teams import); bash remains only where
a process is supervised (the local cluster) or a tool is bootstrapped (the Pulumi CLI, Docker, base images).
"""
