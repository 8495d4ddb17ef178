/* hotstuff/hotstuff.h - everything a libhotstuff user needs. */
#ifndef HOTSTUFF_HOTSTUFF_H
#define HOTSTUFF_HOTSTUFF_H
#include "hotstuff/app.h"
#include "hotstuff/block_tree.h"
#include "hotstuff/config.h"
#include "hotstuff/core.h"
#include "hotstuff/crypto.h"
#include "hotstuff/events.h"
#include "hotstuff/kv.h"
#include "hotstuff/log.h"
#include "hotstuff/messages.h"
#include "hotstuff/network.h"
#include "hotstuff/replica.h"
#include "hotstuff/status.h"
#include "hotstuff/store.h"
#include "hotstuff/types.h"
#endif
