package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/argus-tsdb/argus/client"
)

// A range query, collected whole: fine for results that fit in memory.
func ExampleClient_QueryRange() {
	c, err := client.Dial("localhost:9095", client.Options{Tenant: "team-a"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	end := time.Now()
	res, err := c.QueryRange(context.Background(), client.RangeQuery{
		Expr:  `sum by (job) (rate(http_requests_total[5m]))`,
		Start: end.Add(-time.Hour), End: end, Step: time.Minute,
	})
	if err != nil {
		log.Fatal(err) // an *client.Error: its ID says which err-argus-* refusal
	}
	for _, s := range res.Series {
		fmt.Println(s.Labels, len(s.Floats), "points")
	}
	for _, w := range res.Warnings {
		fmt.Println("warning:", w)
	}
}

// A large result, processed series by series as the frames arrive, in
// bounded memory.
func ExampleClient_QueryRangeEach() {
	c, err := client.Dial("localhost:9095", client.Options{Tenant: "team-a", Token: "secret"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	end := time.Now()
	var peak float64
	_, err = c.QueryRangeEach(context.Background(), client.RangeQuery{
		Expr: `node_memory_Active_bytes`, Start: end.Add(-24 * time.Hour), End: end, Step: 5 * time.Minute,
	}, func(s client.Series) error {
		for _, p := range s.Floats {
			peak = max(peak, p.F)
		}
		return nil // or an error, which cancels the query on the querier and the ingesters
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("peak:", peak)
}

// An instant query, and the label values of its series.
func ExampleClient_Query() {
	c, err := client.Dial("localhost:9095", client.Options{Tenant: "team-a|team-b"}) // federation
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	res, err := c.Query(context.Background(), client.InstantQuery{Expr: `up == 0`})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(res.Series), "targets down")
	jobs, _, err := c.LabelValues(context.Background(), "job", client.Selection{Matchers: []string{`up`}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(jobs)
}

// Raw chunks, as stored, for a downsampler or a federating layer.
func ExampleClient_Chunks() {
	c, err := client.Dial("localhost:9095", client.Options{Tenant: "team-a"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	end := time.Now()
	_, err = c.Chunks(context.Background(), []string{`{job="api"}`}, end.Add(-2*time.Hour), end, func(s client.ChunkSeries) error {
		for _, ch := range s.Chunks {
			fmt.Println(s.Labels, ch.Chunk.Encoding(), ch.Chunk.NumSamples(), "samples")
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
