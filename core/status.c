/* status.c - names of hs_status codes. */
#include "hotstuff/status.h"

const char *hs_status_str(hs_status st) {
    switch (st) {
    case HS_OK: return "OK";
    case HS_NOT_FOUND: return "NOT_FOUND";
    case HS_TIMEOUT: return "TIMEOUT";
    case HS_ERR_INVALID: return "ERR_INVALID";
    case HS_ERR_NOMEM: return "ERR_NOMEM";
    case HS_ERR_IO: return "ERR_IO";
    case HS_ERR_CORRUPT: return "ERR_CORRUPT";
    case HS_ERR_STATE: return "ERR_STATE";
    case HS_ERR_LIMIT: return "ERR_LIMIT";
    case HS_ERR_CLOSED: return "ERR_CLOSED";
    case HS_ERR_APP: return "ERR_APP";
    }
    return "UNKNOWN";
}
