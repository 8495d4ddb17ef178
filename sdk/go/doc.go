// Package hotstuff is a Go client for the hotstuffd admin API (service hotstuff.v1.Admin).
//
// The message and stub types live in hotstuff-c/sdk/go/hotstuffv1, generated from the
// repository's proto/ by scripts/gen-sdks.sh (nothing generated is committed). This package is
// the thin hand-written layer over them:
//
//	c, err := hotstuff.Dial("127.0.0.1:26700")
//	if err != nil { ... }
//	defer c.Close()
//	height, err := c.Put(ctx, []byte("colour"), []byte("blue")) // waits for the commit
//
// Every error a call returns for a failed RPC is an *Error carrying the gRPC status code.
package hotstuff
