/* core/env.h - helpers on hs_core_env shared by the step machines. Internal. */
#ifndef HS_CORE_ENV_H
#define HS_CORE_ENV_H

#include "hotstuff/core.h"

/* Wall-clock ms for event timestamps: env's clock if it has one (simulation), else the real
 * one. */
uint64_t hs_env_wall_ms(const hs_core_env *env);

#endif
