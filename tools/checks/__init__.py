"""Static checks over rendered Kubernetes manifests."""
