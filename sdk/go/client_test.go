package hotstuff

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	pb "hotstuff-c/sdk/go/hotstuffv1"
)

// spec §2.5: height 0, the genesis PC, a zero data hash.
func TestBlockHashVector(t *testing.T) {
	b := &pb.Block{Height: 0, DataHash: make([]byte, 32),
		Justify: &pb.PhaseCertificate{Phase: pb.Phase_PHASE_GENERIC}}
	h, err := BlockHash(b)
	if err != nil {
		t.Fatal(err)
	}
	const want = "dbcfcc77f5774ed3333f3963eb84a324fd967de4d62c96631be6af1d6b3fe136"
	if hex.EncodeToString(h[:]) != want {
		t.Fatalf("got %x", h)
	}
}

// The tests below need a live testnet: tests/sdk/testnet.py sets HS_SDK_ADDRS (ctest runs it).
func clients(t *testing.T) []*Client {
	addrs := os.Getenv("HS_SDK_ADDRS")
	if addrs == "" {
		t.Skip("HS_SDK_ADDRS not set: run through tests/sdk/testnet.py (ctest -R sdk.go)")
	}
	var cs []*Client
	for _, a := range strings.Split(addrs, ",") {
		c, err := Dial(a)
		if err != nil {
			t.Fatal(err)
		}
		c.Timeout = 15 * time.Second
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

func waitHeight(t *testing.T, c *Client, h uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.GetHasCommitted() && s.GetCommittedHeight() >= h {
			return s.GetCommittedHeight()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("did not reach height %d", h)
	return 0
}

func TestPutGetEverywhere(t *testing.T) {
	cs := clients(t)
	ctx := context.Background()
	heights := map[string]uint64{}
	var top uint64
	for i := 0; i < 8; i++ {
		k := fmt.Sprintf("go-key-%d", i)
		h, err := cs[i%4].Put(ctx, []byte(k), []byte("v-"+k))
		if err != nil {
			t.Fatal(err)
		}
		heights[k] = h
		top = max(top, h)
	}
	for _, c := range cs {
		waitHeight(t, c, top)
		for k, h := range heights {
			v, found, err := c.Get(ctx, []byte(k))
			if err != nil || !found || string(v) != "v-"+k {
				t.Fatalf("%s: got %q %v %v", k, v, found, err)
			}
			b, err := c.BlockByHeight(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			carried := false
			for _, tx := range b.GetData() {
				carried = carried || bytes.Contains(tx, []byte(k))
			}
			if !carried {
				t.Fatalf("block %d does not carry %s", h, k)
			}
		}
	}
	if _, found, err := cs[0].Get(ctx, []byte("go-never-written")); found || err != nil {
		t.Fatalf("absent key: found=%v err=%v", found, err)
	}
	h, err := cs[1].Delete(ctx, []byte("go-key-0"))
	if err != nil {
		t.Fatal(err)
	}
	waitHeight(t, cs[2], h)
	if _, found, _ := cs[2].Get(ctx, []byte("go-key-0")); found {
		t.Fatal("deleted key still there")
	}
}

func TestBlocksConsistent(t *testing.T) {
	cs := clients(t)
	ctx := context.Background()
	tip := waitHeight(t, cs[0], 5)
	var blocks []*pb.Block
	for b, err := range cs[0].Blocks(ctx, 0, tip) {
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	if uint64(len(blocks)) != tip+1 {
		t.Fatalf("%d blocks for heights 0..%d", len(blocks), tip)
	}
	for i, b := range blocks {
		if b.GetHeight() != uint64(i) {
			t.Fatalf("block %d has height %d", i, b.GetHeight())
		}
		h, err := BlockHash(b)
		if err != nil || !bytes.Equal(h[:], b.GetHash()) {
			t.Fatalf("height %d: hash mismatch (%v)", i, err)
		}
		dh := KvDataHash(b.GetData())
		if !bytes.Equal(dh[:], b.GetDataHash()) {
			t.Fatalf("height %d: data hash mismatch", i)
		}
		if i > 0 && !bytes.Equal(b.GetJustify().GetBlock(), blocks[i-1].GetHash()) {
			t.Fatalf("height %d: justify does not name the block below", i)
		}
		byHash, err := cs[0].BlockByHash(ctx, b.GetHash())
		if err != nil || byHash.GetHeight() != b.GetHeight() {
			t.Fatalf("height %d by hash: %v", i, err)
		}
	}
	for _, c := range cs[1:] {
		waitHeight(t, c, tip)
		i := 0
		for b, err := range c.Blocks(ctx, 0, tip) {
			if err != nil || !bytes.Equal(b.GetHash(), blocks[i].GetHash()) {
				t.Fatalf("replica disagrees at height %d (%v)", i, err)
			}
			i++
		}
	}
}

func TestValidatorSet(t *testing.T) {
	cs := clients(t)
	vs, err := cs[0].ValidatorSet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(vs.GetCommitted().GetValidators()); n != 4 {
		t.Fatalf("%d validators", n)
	}
	mine := map[string]bool{}
	for _, c := range cs {
		s, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		mine[string(s.GetKey())] = true
	}
	for _, v := range vs.GetCommitted().GetValidators() {
		if !mine[string(v.GetKey())] || v.GetPower() == 0 {
			t.Fatalf("validator %x power %d", v.GetKey(), v.GetPower())
		}
	}
}

func TestErrorCodes(t *testing.T) {
	cs := clients(t)
	ctx := context.Background()
	expect := func(what string, err error, want codes.Code) {
		t.Helper()
		if CodeOf(err) != want {
			t.Fatalf("%s: got %v (%v), want %v", what, CodeOf(err), err, want)
		}
	}
	_, err := cs[0].BlockByHash(ctx, make([]byte, 32))
	expect("unknown hash", err, codes.NotFound)
	_, err = cs[0].BlockByHash(ctx, []byte("short"))
	expect("short hash", err, codes.InvalidArgument)
	_, err = cs[0].BlockByHeight(ctx, 1e12)
	expect("height above the tip", err, codes.OutOfRange)
	var last error
	for _, err := range cs[0].Blocks(ctx, 0, 1e12) {
		last = err
	}
	expect("range above the tip", last, codes.OutOfRange)
	_, _, err = cs[0].Get(ctx, nil)
	expect("empty key", err, codes.InvalidArgument)
	_, err = cs[0].Submit(ctx, []byte("\xff\xff not a kv transaction"), false)
	expect("garbage transaction", err, codes.InvalidArgument)
	short, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	_, err = cs[0].Status(short)
	expect("deadline", err, codes.DeadlineExceeded)
}

func TestSubscribeFromHeightOne(t *testing.T) {
	cs := clients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := waitHeight(t, cs[2], 3) + 5
	from := uint64(1)
	next := uint64(1)
	for ev, err := range cs[2].Subscribe(ctx, SubscribeOptions{
		Types: []pb.EventType{pb.EventType_EVENT_TYPE_COMMIT_BLOCK}, FromHeight: &from}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetType() != pb.EventType_EVENT_TYPE_COMMIT_BLOCK || ev.GetHeight() != next {
			t.Fatalf("got %v height %d, want COMMIT_BLOCK %d", ev.GetType(), ev.GetHeight(), next)
		}
		if next == want {
			break
		}
		next++
	}
	if next != want {
		t.Fatalf("stream ended at %d", next)
	}
}

// The example in examples/go_sdk, run against the testnet as a user would.
func TestExample(t *testing.T) {
	clients(t) // skips without a testnet
	addr := strings.Split(os.Getenv("HS_SDK_ADDRS"), ",")[0]
	out, err := exec.Command("go", "run", "./examples/go_sdk", addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "colour = blue") {
		t.Fatalf("example: %v\n%s", err, out)
	}
}

// Last in the file, so last to run: replica 3 is killed and started again, and the
// subscription continues across the break with every height once, in order.
func TestSubscribeResumesAcrossRestart(t *testing.T) {
	cs := clients(t)
	pids := strings.Split(os.Getenv("HS_SDK_PIDS"), ",")
	node := filepath.Join(os.Getenv("HS_SDK_DIR"), "node3")
	c := cs[3]
	start := waitHeight(t, c, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var restarted *exec.Cmd
	defer func() {
		if restarted != nil && restarted.Process != nil {
			restarted.Process.Signal(syscall.SIGTERM)
			restarted.Wait()
		}
	}()
	next := start
	for ev, err := range c.Subscribe(ctx, SubscribeOptions{
		Types:      []pb.EventType{pb.EventType_EVENT_TYPE_COMMIT_BLOCK},
		FromHeight: &start, Resume: true, ResumeFor: 60 * time.Second}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetHeight() != next {
			t.Fatalf("got height %d, want %d", ev.GetHeight(), next)
		}
		if next == start+2 {
			pid, _ := strconv.Atoi(pids[3])
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // let the stream see the break first
			log, err := os.Create(filepath.Join(node, "log.restart"))
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			restarted = exec.Command(filepath.Join(os.Getenv("HS_BIN_DIR"), "hotstuffd"),
				"--config", filepath.Join(node, "config.json"))
			restarted.Stdout, restarted.Stderr = log, log
			if err := restarted.Start(); err != nil {
				t.Fatal(err)
			}
		}
		if next == start+14 {
			break
		}
		next++
	}
	if restarted == nil || next != start+14 {
		t.Fatalf("stopped at %d (restarted: %v)", next, restarted != nil)
	}
}
