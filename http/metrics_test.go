package http

import "github.com/prometheus/client_golang/prometheus"

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
