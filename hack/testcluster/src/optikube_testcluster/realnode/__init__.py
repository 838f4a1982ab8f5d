"""Real nodes of the test cluster: a real kubelet, containerd with runc, CNI and CoreDNS, in a
network and mount namespace of their own, running the pods' images in containers (see
docs/development.md, "The real node")."""
