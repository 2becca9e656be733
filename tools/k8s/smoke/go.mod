// Workload of the local cluster's smoke test; standard library only.
module goapp.local/tools/k8s/smoke

go 1.24.0
