"""goapp's Pulumi program: stack config → typed settings → components → Kubernetes objects."""
