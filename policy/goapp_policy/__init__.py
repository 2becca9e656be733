"""goapp's policies: the promises the Pulumi program makes about every Kubernetes object, enforced."""
