// Command scheduler is the Dapr scheduler (Jobs API backend), pinned through go.mod.
package main

import "github.com/dapr/dapr/cmd/scheduler/app"

func main() {
	app.Run()
}
