"""Load tests: locust scenarios of simulated listeners, the runners that start a throwaway
cluster for them (`make loadtest`, `make loadtest-ui`, `make capacity`), and the service-time
benchmark (`make bench`)."""
