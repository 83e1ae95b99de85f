#ifndef DOWNPOUR_CLIBUV_SHIM_H
#define DOWNPOUR_CLIBUV_SHIM_H
// The one header through which Swift sees libuv. Casts between handle types and other C-only
// conveniences live here as static inline helpers, so the Swift side never does pointer punning.
#include <uv.h>
#endif
