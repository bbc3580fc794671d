/* Shared by every slmc kernel: fixed-width types and the row-count convention.
 * Activations are [n, features] row-major; n is the number of valid tokens at run time. */
#ifndef SLMC_KERNELS_H
#define SLMC_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#endif
