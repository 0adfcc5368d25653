//go:build race

package querier

// raceEnabled: under the race detector sync.Pool drops items at random.
const raceEnabled = true
