module goapp/bench/baseline

go 1.26.0
