package hotstuff

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"
	pb "hotstuff-c/sdk/go/hotstuffv1"
)

const (
	hashLen = 32
	sigLen  = 64
)

// BlockHash recomputes the hash a block must carry (spec §2.5):
// SHA-256(u64le(height) || borsh(justify) || data_hash). A client that compares it with
// block.Hash checks a replica's answer instead of trusting it.
func BlockHash(b *pb.Block) ([hashLen]byte, error) {
	var out [hashLen]byte
	if len(b.GetDataHash()) != hashLen {
		return out, fmt.Errorf("data_hash is %d bytes, not 32", len(b.GetDataHash()))
	}
	pc := b.GetJustify()
	if pc == nil {
		return out, fmt.Errorf("the block has no justify")
	}
	if pc.Phase < pb.Phase_PHASE_GENERIC || pc.Phase > pb.Phase_PHASE_DECIDE {
		return out, fmt.Errorf("justify has phase %v", pc.Phase)
	}
	block := pc.GetBlock()
	genesis := pc.GetChainId() == 0 && pc.GetView() == 0 && len(pc.GetSignatures()) == 0
	if len(block) == 0 && genesis {
		block = make([]byte, hashLen) // the genesis PC's block is all zeros, sent empty
	}
	if len(block) != hashLen {
		return out, fmt.Errorf("justify.block is %d bytes, not 32", len(block))
	}
	h := sha256.New()
	var u [8]byte
	binary.LittleEndian.PutUint64(u[:], b.GetHeight())
	h.Write(u[:])
	binary.LittleEndian.PutUint64(u[:], pc.GetChainId())
	h.Write(u[:])
	binary.LittleEndian.PutUint64(u[:], pc.GetView())
	h.Write(u[:])
	h.Write(block)
	h.Write([]byte{byte(pc.Phase - pb.Phase_PHASE_GENERIC)}) // Borsh numbers phases from 0
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(pc.GetSignatures())))
	h.Write(n[:])
	for _, s := range pc.GetSignatures() {
		switch len(s.GetSignature()) {
		case 0:
			h.Write([]byte{0})
		case sigLen:
			h.Write([]byte{1})
			h.Write(s.GetSignature())
		default:
			return out, fmt.Errorf("a signature slot holds %d bytes", len(s.GetSignature()))
		}
	}
	h.Write(b.GetDataHash())
	copy(out[:], h.Sum(nil))
	return out, nil
}

// KvDataHash is the kv app's data_hash of a block's transactions:
// SHA-256(u32le(n) || SHA-256(tx 0) || ...).
func KvDataHash(data [][]byte) [hashLen]byte {
	h := sha256.New()
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(data)))
	h.Write(n[:])
	for _, tx := range data {
		d := sha256.Sum256(tx)
		h.Write(d[:])
	}
	var out [hashLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

func nonce() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return binary.LittleEndian.Uint64(b[:])
}

// marshal encodes in the canonical form the kv app requires (fields in number order,
// defaults omitted), which Deterministic gives for these messages.
func marshal(tx *pb.KvTransaction) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(tx)
	if err != nil {
		panic(err) // a KvTransaction built here always encodes
	}
	return b
}

// KvPut is the bytes of a kv-app Put transaction with a random nonce.
func KvPut(key, value []byte) []byte {
	return marshal(&pb.KvTransaction{Nonce: nonce(),
		Op: &pb.KvTransaction_Put_{Put: &pb.KvTransaction_Put{Key: key, Value: value}}})
}

// KvDelete is the bytes of a kv-app Delete transaction with a random nonce.
func KvDelete(key []byte) []byte {
	return marshal(&pb.KvTransaction{Nonce: nonce(),
		Op: &pb.KvTransaction_Delete_{Delete: &pb.KvTransaction_Delete{Key: key}}})
}
