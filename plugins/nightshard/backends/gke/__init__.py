"""The GKE backend: one Kueue-admitted GPU pod per shard, driven by the KubernetesPodOperator.

`settings` (the `backend.gke` config section) and `naming` import with the standard library only, so
config validation never pulls in the Kubernetes client; `pod_builder`, `operator` and `cleanup` do.
"""
