package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// watchPeer adds the peer channel's metrics, read at each scrape: per path
// when a message was last accepted and how many in the last minute, and how
// many datagrams were refused; deadAfter (FLIP_DEAD_AFTER) sets how many
// heartbeats a minute are expected.
func (m *metricsEvents) watchPeer(s *peerSet, deadAfter time.Duration) {
	for _, p := range s.paths {
		labels := prometheus.Labels{"local": p.local.String(), "remote": p.remote.IP.String()}
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "flip_peer_path_last_heard_timestamp_seconds",
				Help:        "When a message of the other box's agent was last accepted on this path (0: never).",
				ConstLabels: labels,
			}, func() float64 {
				last, _ := p.heardStats(time.Now())
				if last.IsZero() {
					return 0
				}
				return float64(last.UnixNano()) / 1e9
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "flip_peer_path_rtt_seconds",
				Help:        "The last round trip on this path, from the echo in heartbeats (0: none yet).",
				ConstLabels: labels,
			}, func() float64 { return p.roundTrip().Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "flip_peer_path_messages_last_minute",
				Help:        "Messages accepted on this path in the last minute (heartbeats: 4 per FLIP_DEAD_AFTER).",
				ConstLabels: labels,
			}, func() float64 {
				_, n := p.heardStats(time.Now())
				return float64(n)
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name:        "flip_peer_path_loss_ratio",
				Help:        "Share of the other box's heartbeats lost on this path over the last minute (0 to 1; 0 until the path has delivered for a minute).",
				ConstLabels: labels,
			}, func() float64 {
				loss, _ := p.lossPercent(time.Now(), deadAfter)
				return loss / 100
			}),
		)
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "flip_peer_refused_total",
		Help: "Datagrams the peer channel refused: junk, another key, reflected, replayed or stale.",
	}, func() float64 { return float64(s.refusedTotal()) }))
}
