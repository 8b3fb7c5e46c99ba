// Package deploy holds rollcall's deployment artefacts (container image,
// Kubernetes manifests, docker compose, Prometheus alerts, Grafana
// dashboard) and no code. Its tests check that the artefacts parse, refer
// to each other consistently and use only metric names that rollcall
// exports; see deploy_test.go.
package deploy
