/*
 * cnn_mpi.h - data-parallel training over MPI (libcnn_mpi, built when the
 * Makefile finds mpicc; link -lcnn_mpi -lcnn and MPI).
 *
 * Every rank runs the same program on the same model and data; fit splits
 * each step's examples over the ranks and sums their gradients, so the
 * weights are those of one process training with batch_size * ranks (see
 * cnn_parallel in cnn.h):
 *
 *   #include <cnn_mpi.h>
 *
 *   MPI_Init(&argc, &argv);
 *   cnn_mpi *mpi = NULL;
 *   cnn_mpi_create(&mpi, MPI_COMM_WORLD);
 *   ... every rank loads the same data x, y and builds or loads the same
 *       compiled model m ...
 *   cnn_status st = cnn_mpi_check_model(mpi, m);     // the same on every rank?
 *   if (st == CNN_OK)
 *       st = cnn_mpi_check_tensor(mpi, x, "the images");
 *   if (st == CNN_OK)
 *       st = cnn_model_fit(m, x, y, cnn_fit(.epochs = 5, .batch_size = 32,
 *                          .parallel = cnn_mpi_parallel(mpi),
 *                          .progress = cnn_mpi_rank(mpi) == 0 ? cnn_progress_console
 *                                                             : NULL), NULL);
 *   if (st == CNN_OK && cnn_mpi_rank(mpi) == 0)
 *       st = cnn_model_save(m, "model.cnn");
 *   if (st)  // one rank's failure can leave the others waiting: end them all
 *       MPI_Abort(MPI_COMM_WORLD, 1);
 *   cnn_mpi_free(mpi);
 *   MPI_Finalize();
 *
 * The checks are collective and give the same verdict on every rank, so a
 * failed check can end with MPI_Finalize everywhere. Communication errors
 * are returned (MPI_ERRORS_RETURN on the library's own communicator) as
 * CNN_ERR_IO; a rank that dies is handled by the MPI launcher (Open MPI's
 * mpirun ends the whole job). The hooks run on the thread that calls fit:
 * MPI_THREAD_FUNNELED suffices.
 */
#ifndef CNN_MPI_H
#define CNN_MPI_H

#include <mpi.h>

#include "cnn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cnn_mpi cnn_mpi;

/* Joins the ranks of comm (MPI must be initialised; comm is duplicated,
 * so the library's messages never mix with the caller's). Collective over
 * comm. Free with cnn_mpi_free before MPI_Finalize. */
cnn_status cnn_mpi_create(cnn_mpi **out, MPI_Comm comm);
void cnn_mpi_free(cnn_mpi *mpi);
int cnn_mpi_rank(const cnn_mpi *mpi);
int cnn_mpi_size(const cnn_mpi *mpi);
/* Ranks running on this machine (sharing its memory), this one included:
 * a rank's fair share of the cores is online cores / this. */
int cnn_mpi_local_size(const cnn_mpi *mpi);
/* The hooks for cnn_fit_config.parallel; valid until cnn_mpi_free. */
const cnn_parallel *cnn_mpi_parallel(const cnn_mpi *mpi);

/* Collective start-up checks: every rank must hold the same model - the
 * same layers (its summary), the same weights, and the same layer
 * settings, loss, optimizer state and training position (the checksum of
 * its .cnn file) - or the same tensor (shape and values; NULL on every
 * rank is fine). Otherwise CNN_ERR_STATE on every rank, the message naming
 * the first rank that differs from rank 0 and what differs. */
cnn_status cnn_mpi_check_model(cnn_mpi *mpi, cnn_model *m);
cnn_status cnn_mpi_check_tensor(cnn_mpi *mpi, const cnn_tensor *t, const char *what);

#ifdef __cplusplus
}
#endif
#endif /* CNN_MPI_H */
