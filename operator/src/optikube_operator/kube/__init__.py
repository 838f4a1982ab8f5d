"""The Kubernetes backend: a kopf operator that turns OptimizationJobs into OptimizationTrials,
Indexed Jobs, headless Services and ConfigMaps, records the progress trainer pods send, and publishes
status, Events and Prometheus metrics.

It only observes, acts and publishes: `optikube_operator.core` decides. Layout: `handlers` (the
`@kopf.on` decorators), `reconcile` (observe -> decide -> act for one job), `observe` (cluster
objects -> records), `resources` (pure builders of every object), `backend` (the actions against the
API), `status` (the status patch), `records` (the per-job records kept in memory and written through),
`progress` (the progress endpoint's handler), `auth` (TokenReview), `prometheus`, `k8s_events`
(Kubernetes Events), `client` (a small async API client), `config` (the operator's settings),
`runtime` (wiring and `run_operator`).
"""
