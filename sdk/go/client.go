package hotstuff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pb "hotstuff-c/sdk/go/hotstuffv1"
)

// Error is a failed call: the gRPC status code and the server's message.
type Error struct {
	Method  string
	Code    codes.Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s: %s", e.Method, e.Code, e.Message) }

// CodeOf is the status code of err: that of an *Error, codes.OK for nil, Unknown otherwise.
func CodeOf(err error) codes.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return codes.OK
	}
	return codes.Unknown
}

func wrap(method string, err error) error {
	if err == nil {
		return nil
	}
	var s *status.Status
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s = status.FromContextError(err) // Canceled / DeadlineExceeded, not Unknown
	} else {
		s, _ = status.FromError(err)
	}
	return &Error{Method: method, Code: s.Code(), Message: s.Message()}
}

// Client talks to one replica's admin port. It is safe for concurrent use.
type Client struct {
	conn  *grpc.ClientConn
	admin pb.AdminClient
	// Timeout bounds each call whose context has no deadline (each page, for streams).
	Timeout time.Duration
}

// Dial makes a client for addr ("127.0.0.1:26700"). The connection is plaintext unless opts
// include grpc.WithTransportCredentials (later options override the default). It does not
// wait for the connection: the first call does.
func Dial(addr string, opts ...grpc.DialOption) (*Client, error) {
	all := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
		opts...)
	conn, err := grpc.NewClient(addr, all...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, admin: pb.NewAdminClient(conn), Timeout: 10 * time.Second}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stub is the generated client, for calls this layer does not wrap.
func (c *Client) Stub() pb.AdminClient { return c.admin }

func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.Timeout)
}

// Status is the replica's role, view, committed height and hash, and peers.
func (c *Client) Status(ctx context.Context) (*pb.GetStatusResponse, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r, err := c.admin.GetStatus(ctx, &pb.GetStatusRequest{})
	return r, wrap("GetStatus", err)
}

// BlockByHeight is the committed block at height.
func (c *Client) BlockByHeight(ctx context.Context, height uint64) (*pb.Block, error) {
	return c.block(ctx, &pb.GetBlockRequest{Selector: &pb.GetBlockRequest_Height{Height: height}})
}

// BlockByHash is the committed block with this 32-byte hash.
func (c *Client) BlockByHash(ctx context.Context, hash []byte) (*pb.Block, error) {
	return c.block(ctx, &pb.GetBlockRequest{Selector: &pb.GetBlockRequest_Hash{Hash: hash}})
}

func (c *Client) block(ctx context.Context, req *pb.GetBlockRequest) (*pb.Block, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r, err := c.admin.GetBlock(ctx, req)
	if err != nil {
		return nil, wrap("GetBlock", err)
	}
	return r.GetBlock(), nil
}

// Blocks yields the committed blocks from height from to to (inclusive), in order, asking
// again where each page of the server's stream ends. It stops at the first error, which it
// yields (OUT_OF_RANGE when to is above the committed tip).
func (c *Client) Blocks(ctx context.Context, from, to uint64) iter.Seq2[*pb.Block, error] {
	return func(yield func(*pb.Block, error) bool) {
		h := from
		for h <= to {
			got, err := c.page(ctx, h, to, func(b *pb.Block) bool {
				h++
				return yield(b, nil)
			}, h)
			if err != nil {
				yield(nil, err)
				return
			}
			if got < 0 { // the consumer stopped
				return
			}
			if got == 0 {
				yield(nil, &Error{Method: "ListBlocks", Code: codes.DataLoss,
					Message: fmt.Sprintf("the server sent no block from height %d", h)})
				return
			}
		}
	}
}

// page streams one ListBlocks call; returns how many blocks it yielded, or -1 when the
// consumer stopped early.
func (c *Client) page(ctx context.Context, from, to uint64, each func(*pb.Block) bool,
	next uint64) (int, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	s, err := c.admin.ListBlocks(ctx, &pb.ListBlocksRequest{StartHeight: from, EndHeight: to})
	if err != nil {
		return 0, wrap("ListBlocks", err)
	}
	n := 0
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, wrap("ListBlocks", err)
		}
		if r.GetBlock().GetHeight() != next {
			return n, &Error{Method: "ListBlocks", Code: codes.DataLoss,
				Message: fmt.Sprintf("expected height %d, got %d", next, r.GetBlock().GetHeight())}
		}
		next++
		n++
		if !each(r.GetBlock()) {
			return -1, nil
		}
	}
}

// ValidatorSet is the committed validator set, and a pending update if any.
func (c *Client) ValidatorSet(ctx context.Context) (*pb.GetValidatorSetResponse, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r, err := c.admin.GetValidatorSet(ctx, &pb.GetValidatorSetRequest{})
	return r, wrap("GetValidatorSet", err)
}

// Get is the committed value of key; found is false when the key is absent.
func (c *Client) Get(ctx context.Context, key []byte) (value []byte, found bool, err error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r, err := c.admin.GetState(ctx, &pb.GetStateRequest{Key: key})
	if status.Code(err) == codes.NotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, wrap("GetState", err)
	}
	return r.GetValue(), true, nil
}

// Submit submits raw transaction bytes. With wait it returns once the transaction commits
// (DEADLINE_EXCEEDED if it does not in time), and the response carries the height.
func (c *Client) Submit(ctx context.Context, tx []byte, wait bool) (*pb.AdminSubmitTransactionResponse, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	r, err := c.admin.SubmitTransaction(ctx,
		&pb.AdminSubmitTransactionRequest{Transaction: tx, WaitForCommit: wait})
	return r, wrap("SubmitTransaction", err)
}

// Put sets key to value through the kv app and waits for the commit; it returns the height
// of the block that committed it.
func (c *Client) Put(ctx context.Context, key, value []byte) (uint64, error) {
	r, err := c.Submit(ctx, KvPut(key, value), true)
	if err != nil {
		return 0, err
	}
	return r.GetHeight(), nil
}

// Delete deletes key through the kv app and waits for the commit, as Put does.
func (c *Client) Delete(ctx context.Context, key []byte) (uint64, error) {
	r, err := c.Submit(ctx, KvDelete(key), true)
	if err != nil {
		return 0, err
	}
	return r.GetHeight(), nil
}

// SubscribeOptions: which events, and from which committed height to replay.
type SubscribeOptions struct {
	Types []pb.EventType // empty: all types
	// With COMMIT_BLOCK among the types: first replay committed blocks from this height.
	FromHeight *uint64
	// Resume reconnects when the stream breaks (UNAVAILABLE and the like, or the server
	// cutting a slow subscriber off) and, for COMMIT_BLOCK, continues from the height after
	// the last one yielded: commits come once each, in order, across a replica restart.
	// Without FromHeight it starts after the tip committed when it first connects, so a break
	// before the first event loses nothing either. It gives up when one break lasts longer
	// than ResumeFor (default 30 s).
	Resume    bool
	ResumeFor time.Duration
}

func wantsCommits(types []pb.EventType) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == pb.EventType_EVENT_TYPE_COMMIT_BLOCK {
			return true
		}
	}
	return false
}

// Subscribe yields events until ctx ends (then it yields ctx's error, as Canceled or
// DeadlineExceeded) or an error it does not resume, which it yields.
func (c *Client) Subscribe(ctx context.Context, o SubscribeOptions) iter.Seq2[*pb.SubscribeResponse, error] {
	return func(yield func(*pb.SubscribeResponse, error) bool) {
		next := o.FromHeight
		commits := wantsCommits(o.Types)
		if o.Resume && next == nil && commits {
			st, err := c.Status(ctx)
			if err != nil {
				yield(nil, err)
				return
			}
			h := uint64(0)
			if st.GetHasCommitted() {
				h = st.GetCommittedHeight() + 1
			}
			next = &h
		}
		limit := o.ResumeFor
		if limit <= 0 {
			limit = 30 * time.Second
		}
		var brokeAt time.Time // when the current break began; zero while connected
		for {
			req := &pb.SubscribeRequest{Types: o.Types}
			if next != nil {
				req.HasFromHeight = true
				req.FromHeight = *next
			}
			opened := time.Now()
			sctx, cancel := context.WithCancel(ctx)
			s, err := c.admin.Subscribe(sctx, req)
			for err == nil {
				var ev *pb.SubscribeResponse
				ev, err = s.Recv()
				if err != nil {
					break
				}
				brokeAt = time.Time{}
				if ev.GetType() == pb.EventType_EVENT_TYPE_COMMIT_BLOCK {
					if next != nil && ev.GetHeight() < *next {
						continue // yielded before a reconnect
					}
					h := ev.GetHeight() + 1
					next = &h
				}
				if !yield(ev, nil) {
					cancel()
					return
				}
			}
			cancel()
			if ctx.Err() != nil {
				yield(nil, wrap("Subscribe", ctx.Err()))
				return
			}
			if err == io.EOF {
				return // the server ended the stream
			}
			code := status.Code(err)
			resumable := code == codes.Unavailable || code == codes.Internal ||
				code == codes.Unknown ||
				(code == codes.ResourceExhausted && next != nil && commits)
			// A stream that stayed up a while ends a new break, even if it was quiet.
			if brokeAt.IsZero() || time.Since(opened) > 5*time.Second {
				brokeAt = time.Now()
			}
			if !o.Resume || !resumable || time.Since(brokeAt) > limit {
				yield(nil, wrap("Subscribe", err))
				return
			}
			select {
			case <-ctx.Done():
				yield(nil, wrap("Subscribe", ctx.Err()))
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}
