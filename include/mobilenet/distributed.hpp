#pragma once
/// \file distributed.hpp
/// Multi-process data-parallel training on LibTorch's c10d: rendezvous from the standard
/// environment variables through a TCPStore, ProcessGroupGloo on CPU and ProcessGroupNCCL on
/// CUDA (when the build has it), a DistributedDataParallel helper that averages gradients in
/// buckets while backward runs, SyncBatchNorm2d, metric reductions and a local launcher.
///
/// Typical rank program (launched by `launch_local`, torchrun, or by hand with the variables):
/// \code
///   auto comm = mobilenet::init_distributed();              // RANK, WORLD_SIZE, MASTER_*
///   torch::manual_seed(0);
///   MobileNetV2 model(options);                               // same seed: same init anyway
///   // or, global-batch BatchNorm statistics:
///   // MobileNetV2 model(options.norm_layer(mobilenet::sync_batch_norm_layer(comm)));
///   model->to(comm->device());
///   mobilenet::DistributedDataParallel ddp(model, comm);    // rank 0's weights everywhere
///   torch::optim::SGD opt(model->parameters(), 0.1);
///   for (auto& batch : my_shard) {
///     opt.zero_grad();
///     loss_fn(model->forward(batch.data), batch.target).backward();
///     ddp.synchronize();                                      // averaged gradients in .grad
///     opt.step();
///   }
/// \endcode
///
/// One header per concept, under distributed/: env.hpp (DistributedEnv, DistributedOptions),
/// communicator.hpp (Communicator), default_group.hpp (init_distributed), ddp.hpp
/// (DistributedDataParallel), sync_batch_norm.hpp (SyncBatchNorm2d, sync_batch_norm_layer)
/// and launch.hpp (launch_local). This header includes them all.

#include <mobilenet/distributed/communicator.hpp>
#include <mobilenet/distributed/ddp.hpp>
#include <mobilenet/distributed/default_group.hpp>
#include <mobilenet/distributed/env.hpp>
#include <mobilenet/distributed/error.hpp>
#include <mobilenet/distributed/launch.hpp>
#include <mobilenet/distributed/sync_batch_norm.hpp>
