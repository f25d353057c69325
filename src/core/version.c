/* The library's version, from the header it was built with. */
#include "cnn.h"

#define CNN_STR2(x) #x
#define CNN_STR(x) CNN_STR2(x)

const char *cnn_version(void)
{
    return CNN_STR(CNN_VERSION_MAJOR) "." CNN_STR(CNN_VERSION_MINOR) "." CNN_STR(
        CNN_VERSION_PATCH);
}
