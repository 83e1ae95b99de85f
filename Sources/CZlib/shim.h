#ifndef DOWNPOUR_CZLIB_SHIM_H
#define DOWNPOUR_CZLIB_SHIM_H
// zlib, for reading the gzipped IDX files that MNIST ships as.
#include <zlib.h>
#endif
