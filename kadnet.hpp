#pragma once
// Everything an application embedding kadnet uses, in one include: the node (calls, plugin
// handlers, byte streams, SPEAK/WHISPER/SHOUT, node.dht()), file transfers on streams, the
// error codes, and the swarm builder that tests and benchmarks use.
//
//   #include <kadnet/kadnet.hpp>
//   kadnet::node n(io.get_executor());
//
// The headers it gathers may also be included one by one (<kadnet/transports/node.hpp>, ...).
#include "kadnet/core/errors.hpp"
#include "kadnet/transports/file_transfer.hpp"
#include "kadnet/transports/node.hpp"
#include "kadnet/transports/testing/socket_swarm.hpp"
