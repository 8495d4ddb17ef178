/* hotstuff/status.h - status codes returned by every fallible libhotstuff call. */
#ifndef HOTSTUFF_STATUS_H
#define HOTSTUFF_STATUS_H

typedef enum hs_status {
    HS_OK = 0,
    HS_NOT_FOUND = 1,      /* a lookup found nothing; not an error in itself */
    HS_TIMEOUT = 2,        /* a wait ended at its deadline */
    HS_ERR_INVALID = -1,   /* bad argument, or malformed external input */
    HS_ERR_NOMEM = -2,
    HS_ERR_IO = -3,        /* the KV store failed to read or write */
    HS_ERR_CORRUPT = -4,   /* stored bytes failed to decode: the store is damaged */
    HS_ERR_STATE = -5,     /* the call is not valid in the object's current state */
    HS_ERR_LIMIT = -6,     /* a configured bound would be exceeded */
    HS_ERR_CLOSED = -7,    /* the object is shut down */
    HS_ERR_APP = -8        /* the App returned an error (not a verdict of Invalid) */
} hs_status;

/* A static, human-readable name for a status ("OK", "NOT_FOUND", ...). */
const char *hs_status_str(hs_status st);

#endif
