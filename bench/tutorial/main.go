// Command tutorial is the server users would write instead of goapp: the Gin tutorial's GET /hello program,
// verbatim (gin.Default() with its text access log and panic recovery, one handler answering c.JSON), so the
// benchmark can compare goapp with what it grew from. It is built on goapp's Gin release
// (tests/test_versions.py keeps the two go.mod files on one version).
//
// Its one difference from the tutorial is where it listens. The tutorial's r.Run() takes :8080 (or :$PORT) on
// every interface; a benchmark must pick a free port and stay on loopback, so the address is the -addr flag.
// Gin's access log and its debug-mode notices go to stdout and recovery's reports to stderr, as in the
// tutorial: the benchmark gives both streams the same places as goapp's (stdout, where goapp writes its
// access lines, to /dev/null; stderr to a log file).
//
//	tutorial [-addr 127.0.0.1:8080]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gin-gonic/gin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (host:port)")
	flag.Parse()

	r := gin.Default()
	r.GET("/hello", func(c *gin.Context) {
		c.JSON(200, gin.H{"message": "Hello from Gin!"})
	})
	// The tutorial ignores Run's error; here a port that cannot be had ends the process with a status the
	// benchmark sees, instead of a silent exit 0.
	if err := r.Run(*addr); err != nil {
		fmt.Fprintf(os.Stderr, "tutorial: listen on %s (-addr): %v\n", *addr, err)
		os.Exit(1)
	}
}
