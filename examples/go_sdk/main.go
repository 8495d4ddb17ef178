// go_sdk: put a key through one replica, read it back, and check the committing block's hash.
// Built by scripts/gen-sdks.sh inside the generated module: go run ./examples/go_sdk ADDR
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	hotstuff "hotstuff-c/sdk/go"
)

func main() {
	addr := "127.0.0.1:26700"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	c, err := hotstuff.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	height, err := c.Put(ctx, []byte("colour"), []byte("blue")) // waits for the commit
	if err != nil {
		log.Fatal(err)
	}
	value, _, err := c.Get(ctx, []byte("colour"))
	if err != nil {
		log.Fatal(err)
	}
	b, err := c.BlockByHeight(ctx, height)
	if err != nil {
		log.Fatal(err)
	}
	h, err := hotstuff.BlockHash(b)
	if err != nil || !bytes.Equal(h[:], b.GetHash()) {
		log.Fatalf("block %d: hash does not match its contents (%v)", height, err)
	}
	fmt.Printf("committed at height %d (block %x): colour = %s\n", height, h[:8], value)
}
