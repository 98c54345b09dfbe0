package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// metastore endpoint status|health: etcdctl's, one row per endpoint.

func endpointCommand() *cli.Command {
	return &cli.Command{
		Name:  "endpoint",
		Usage: "status and health of the members",
		Subcommands: []*cli.Command{{
			Name: "status", Usage: "print each endpoint's status", Flags: append(clientFlags(true), clusterFlag),
			Before: noArgs, Action: endpointStatus,
		}, {
			Name: "health", Usage: "check each endpoint's health (a read through raft, and no alarm)",
			Flags: append(clientFlags(true), clusterFlag), Before: noArgs, Action: endpointHealth,
		}},
	}
}

type epStatus struct {
	Endpoint string             `json:"Endpoint"`
	Status   *pb.StatusResponse `json:"Status"`
}

func endpointStatus(c *cli.Context) error {
	f, err := format(c)
	if err != nil {
		return err
	}
	eps, err := clusterEndpoints(c)
	if err != nil {
		return err
	}
	var out []epStatus
	var failed error
	for _, ep := range eps {
		cli, err := newOpsClient(c, ep)
		if err != nil {
			return err
		}
		ctx, cancel := commandCtx(c)
		st, err := cli.Status(ctx, ep)
		cancel()
		cli.Close()
		if err != nil {
			fmt.Fprintf(c.App.ErrWriter, "failed to get the status of endpoint %s (%v)\n", ep, clientErr(err))
			failed = fmt.Errorf("endpoint status failed on %s", ep)
			continue
		}
		out = append(out, epStatus{ep, (*pb.StatusResponse)(st)})
	}
	switch f {
	case "json":
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
	default:
		var rows [][]string
		for _, e := range out {
			st := e.Status
			rows = append(rows, []string{e.Endpoint, hexID(st.Header.MemberId), st.Version, strconv.FormatInt(st.DbSize, 10),
				strconv.FormatInt(st.DbSizeInUse, 10), strconv.FormatBool(st.Leader == st.Header.MemberId),
				strconv.FormatBool(st.IsLearner), strconv.FormatUint(st.RaftTerm, 10), strconv.FormatUint(st.RaftIndex, 10),
				strconv.FormatUint(st.RaftAppliedIndex, 10), statusErrors(st)})
		}
		writeTable(c.App.Writer, []string{"ENDPOINT", "ID", "VERSION", "DB SIZE", "IN USE", "IS LEADER", "IS LEARNER",
			"RAFT TERM", "RAFT INDEX", "APPLIED INDEX", "ERRORS"}, rows)
	}
	return failed
}

type epHealth struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Took     string `json:"took"`
	Error    string `json:"error,omitempty"`
}

// endpointHealth is etcdctl's check: a linearizable Get must succeed (a
// permission error counts as success) and no alarm may be active.
func endpointHealth(c *cli.Context) error {
	f, err := format(c)
	if err != nil {
		return err
	}
	eps, err := clusterEndpoints(c)
	if err != nil {
		return err
	}
	var out []epHealth
	unhealthy := 0
	for _, ep := range eps {
		h := epHealth{Endpoint: ep}
		start := time.Now()
		cli, err := newOpsClient(c, ep)
		if err != nil {
			return err
		}
		ctx, cancel := commandCtx(c)
		_, err = cli.Get(ctx, "health")
		if err == nil || err == rpctypes.ErrPermissionDenied {
			h.Health = true
			if ar, aerr := cli.AlarmList(ctx); aerr != nil {
				h.Health, h.Error = false, "Unable to fetch the alarm list"
			} else if len(ar.Alarms) > 0 {
				h.Health, h.Error = false, "Active Alarm(s): "
				for _, a := range ar.Alarms {
					h.Error += a.Alarm.String() + " "
				}
			}
		} else {
			h.Error = clientErr(err).Error()
		}
		cancel()
		cli.Close()
		h.Took = time.Since(start).String()
		if !h.Health {
			unhealthy++
		}
		out = append(out, h)
	}
	switch f {
	case "json":
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
	case "table":
		var rows [][]string
		for _, h := range out {
			rows = append(rows, []string{h.Endpoint, strconv.FormatBool(h.Health), h.Took, h.Error})
		}
		writeTable(c.App.Writer, []string{"ENDPOINT", "HEALTH", "TOOK", "ERROR"}, rows)
	default:
		for _, h := range out {
			if h.Health {
				fmt.Fprintf(c.App.Writer, "%s is healthy: successfully committed proposal: took = %s\n", h.Endpoint, h.Took)
			} else {
				fmt.Fprintf(c.App.ErrWriter, "%s is unhealthy: failed to commit proposal: %s\n", h.Endpoint, h.Error)
			}
		}
	}
	if unhealthy > 0 {
		return fmt.Errorf("unhealthy cluster: %d of %d endpoints", unhealthy, len(out))
	}
	return nil
}
