#pragma once
// node.dht(): the Kademlia DHT of a node, with Asio completion tokens.
//
//   auto key = kadnet::text_key("greeting");             // BLAKE2b-256 of the text
//   node.dht().put(key, bytes, [](error_code ec, kadnet::dht::put_outcome r) { ... r.replicas });
//   auto [ec, value] = co_await node.dht().get(key, as_tuple(use_awaitable));
//   node.dht().update(key, [](const auto& current) { return next_of(current); }, handler);  // CAS
//   node.dht().patch(key, r.value->version, r.value->value, edited, handler);  // sends a diff
//   node.dht().lock(key, 10s, [](error_code ec, kadnet::dht::lock_outcome r) { ... r.token });
//   node.dht().listen(key, [](const kadnet::dht::listen_delivery& d) { ... d.value.version },
//                     [](error_code ec, kadnet::dht::listen_outcome r) { ... r.subscription });
//
// Results complete on the handler's associated executor (the node's strand when it has none).
#include <concepts>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/dht_node.hpp"
#include "kadnet/transports/completion.hpp"
#include "kadnet/transports/node_driver.hpp"

namespace kadnet {

// A DHT key from text, as DESIGN.md fixes it: BLAKE2b-256 of the UTF-8 bytes.
inline core::node_id text_key(std::string_view text) { return core::node_id::hash_of(as_bytes(text)); }

namespace detail {
// The error of any finished operation, whatever its kind.
inline boost::system::error_code error_of(const dht::dht_node::operation_done& d) {
  return std::visit([](const auto& r) { return r.ec; }, d.result);
}
}  // namespace detail

class dht_handle {
 public:
  explicit dht_handle(std::shared_ptr<transports::node_driver> driver) : driver_(std::move(driver)) {}

  // Stores `value` under `key` on the k nodes closest to it. Completes with the outcome: ec
  // clear once at least one replica ACKed; r.replicas says how many did.
  template <typename Token>
  auto put(core::node_id key, byte_vector value, dht::put_options options, Token&& token) {
    return run<void(boost::system::error_code, dht::put_outcome)>(
        std::forward<Token>(token),
        [key, value = std::move(value), options](dht::dht_node& d, core::time_point now) mutable {
          return d.put(key, std::move(value), options, now);
        },
        [](dht::dht_node::operation_done& done) {
          auto* r = std::get_if<dht::put_outcome>(&done.result);
          return r ? *r : dht::put_outcome{detail::error_of(done), 0, 0, {}, 0};
        });
  }
  template <typename Token>
  auto put(core::node_id key, byte_vector value, Token&& token) {
    return put(key, std::move(value), dht::put_options{}, std::forward<Token>(token));
  }

  // Diff-based write (docs/PROTOCOL.md 8.8): stores what `base_value` (version base_version, as
  // read with get) becomes as version base_version + 1, sending the k closest nodes only the
  // diff; a node that lacks the base gets the whole value. `change` is the new value (the diff is
  // computed) or a dht::value_patch against base_value (refused with errc::bad_field when it does
  // not fit). Completes like put: ec clear once a replica took it; r.by_diff and r.by_whole say
  // how, r.bytes_sent what the STOREs cost.
  template <typename Change, typename Token>
    requires std::same_as<std::decay_t<Change>, byte_vector> || std::same_as<std::decay_t<Change>, dht::value_patch>
  auto patch(core::node_id key, std::uint64_t base_version, byte_vector base_value, Change&& change,
             dht::patch_options options, Token&& token) {
    return run<void(boost::system::error_code, dht::patch_outcome)>(
        std::forward<Token>(token),
        [key, base_version, base = std::move(base_value), change = std::decay_t<Change>(std::forward<Change>(change)),
         options](dht::dht_node& d, core::time_point now) mutable {
          return d.patch(key, base_version, base, std::move(change), options, now);
        },
        [](dht::dht_node::operation_done& done) {
          if (auto* r = std::get_if<dht::patch_outcome>(&done.result)) return *r;
          dht::patch_outcome failed;
          failed.ec = detail::error_of(done);
          return failed;
        });
  }
  template <typename Change, typename Token>
    requires std::same_as<std::decay_t<Change>, byte_vector> || std::same_as<std::decay_t<Change>, dht::value_patch>
  auto patch(core::node_id key, std::uint64_t base_version, byte_vector base_value, Change&& change, Token&& token) {
    return patch(key, base_version, std::move(base_value), std::forward<Change>(change), dht::patch_options{},
                 std::forward<Token>(token));
  }

  // Finds the value stored under `key`: errc::not_found when no node on the path holds it.
  template <typename Token>
  auto get(core::node_id key, Token&& token) {
    return run<void(boost::system::error_code, dht::get_result)>(
        std::forward<Token>(token),
        [key](dht::dht_node& d, core::time_point now) { return d.get(key, now); },
        [](dht::dht_node::operation_done& done) {
          auto* r = std::get_if<dht::get_result>(&done.result);
          return r ? *r : dht::get_result{detail::error_of(done), std::nullopt, {}};
        },
        boost::asio::cancellation_type::all);  // a read: nothing to undo
  }

  // Compare-and-swap (docs/PROTOCOL.md 8.6): writes `value` as version expected_version + 1 if
  // the key is at expected_version (0: it holds nothing), decided by a majority of its k closest.
  // Completes with ec clear and r.version the new version, or errc::cas_conflict with the current
  // r.version and r.value, or another error (no_quorum, owned_key, too_large, not_connected,
  // locked: another node holds the key's lock, PROTOCOL.md 8.9).
  template <typename Token>
  auto cas(core::node_id key, std::uint64_t expected_version, byte_vector value, Token&& token) {
    return run_outcome<dht::cas_outcome>(std::forward<Token>(token),
                   [key, expected_version, value = std::move(value)](dht::dht_node& d, core::time_point now) mutable {
                     return d.cas(key, expected_version, std::move(value), now);
                   });
  }

  // Read-modify-cas until `fn`'s value is written (r.written, r.version) or fn declines (then
  // r.version and r.value are the current ones: a quorum read). fn runs on the node's strand,
  // once per attempt.
  template <typename Token>
  auto update(core::node_id key, dht::update_function fn, Token&& token) {
    return run_outcome<dht::cas_outcome>(std::forward<Token>(token), [key, fn = std::move(fn)](dht::dht_node& d, core::time_point now) mutable {
      return d.update(key, std::move(fn), now);
    });
  }

  // Locks (docs/PROTOCOL.md 8.9). lock: a lease of `lease` on `key` with a fencing token above
  // every earlier grant's (r.token), or errc::locked naming the holder (r.holder, r.remaining);
  // count on it until r.expires_at at the latest and present r.token to whatever it guards.
  // renew: the lease of grant `fencing_token` starts again (errc::not_lock_holder when it was
  // taken over or released). unlock: frees the key. The lease must be 1 ms .. 24 h
  // (std::invalid_argument, thrown by the call itself).
  template <typename Token>
  auto lock(core::node_id key, std::chrono::milliseconds lease, Token&& token) {
    dht::check_lease(lease);
    return run_outcome<dht::lock_outcome>(std::forward<Token>(token), [key, lease](dht::dht_node& d, core::time_point now) {
      return d.lock(key, lease, now);
    });
  }
  template <typename Token>
  auto renew(core::node_id key, std::uint64_t fencing_token, std::chrono::milliseconds lease, Token&& token) {
    dht::check_lease(lease);
    return run_outcome<dht::lock_outcome>(std::forward<Token>(token), [key, fencing_token, lease](dht::dht_node& d, core::time_point now) {
      return d.renew(key, fencing_token, lease, now);
    });
  }
  template <typename Token>
  auto unlock(core::node_id key, std::uint64_t fencing_token, Token&& token) {
    return run_outcome<dht::lock_outcome>(std::forward<Token>(token), [key, fencing_token](dht::dht_node& d, core::time_point now) {
      return d.unlock(key, fencing_token, now);
    });
  }

  // Listening (docs/PROTOCOL.md 8.10): `on_version` is called on the node's strand with every
  // version of `key` newer than the last it got, in increasing order — first the version the
  // replicas hold now, if any — whole (d.value) and with the change as a diff (d.diff) when one
  // travelled. Completes once the first registration ended: ec clear and r.subscription, which
  // cancel takes, or the error (not_connected, ...) and no subscription.
  template <typename Token>
  auto listen(core::node_id key, transports::node_driver::listen_handler on_version, Token&& token) {
    return run<void(boost::system::error_code, dht::listen_outcome)>(
        std::forward<Token>(token),
        [key, on_version = std::move(on_version), d = driver_](dht::dht_node& n, core::time_point now) mutable {
          auto id = n.listen(key, now);
          d->set_listen_handler(id, std::move(on_version));
          return id;
        },
        [d = driver_](dht::dht_node::operation_done& done) {
          dht::listen_outcome r;
          if (auto* o = std::get_if<dht::listen_outcome>(&done.result)) r = *o;
          else r.ec = detail::error_of(done);
          if (r.ec) d->drop_listen_handler(done.id);
          return r;
        },
        // Not cancellable: its subscription lives on past the first registration; cancel ends it.
        boost::asio::cancellation_type::none);
  }

  // Ends a subscription: no more calls of its handler. Completes with errc::not_found when the
  // subscription is unknown (already cancelled, or its listen failed).
  template <typename Token>
  auto cancel(dht::operation_id subscription, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [d = driver_, subscription](auto handler) {
          boost::asio::dispatch(d->any_executor(), [d, subscription, h = std::move(handler)]() mutable {
            boost::system::error_code ec;
            if (!d->cancel_listen(subscription)) ec = core::errc::not_found;
            detail::complete(std::move(h), d->any_executor(), ec);
          });
        },
        token);
  }

  // The k nodes closest to `id` that answered, closest first.
  template <typename Token>
  auto find_node(core::node_id id, Token&& token) {
    return run<void(boost::system::error_code, dht::find_node_result)>(
        std::forward<Token>(token),
        [id](dht::dht_node& d, core::time_point now) { return d.find_node(id, now); },
        [](dht::dht_node::operation_done& done) {
          auto* r = std::get_if<dht::find_node_result>(&done.result);
          return r ? *r : dht::find_node_result{detail::error_of(done), {}, {}};
        },
        boost::asio::cancellation_type::all);
  }

  // Broadcasts `payload` to every node (PROTOCOL.md 5.5), signed by this node: errc::too_large
  // beyond the broadcast's payload limit, errc::not_connected when no node took it.
  template <typename Token>
  auto shout(byte_vector payload, Token&& token) {
    return run<void(boost::system::error_code, dht::shout_outcome)>(
        std::forward<Token>(token),
        [payload = std::move(payload)](dht::dht_node& d, core::time_point now) mutable {
          return d.shout(std::move(payload), now);
        },
        [](dht::dht_node::operation_done& done) {
          auto* r = std::get_if<dht::shout_outcome>(&done.result);
          return r ? *r : dht::shout_outcome{detail::error_of(done), 0, 0};
        });
  }

  // Joins the network: a lookup of the node's own id through the sessions it has (dial
  // bootstrap peers first, with node::async_connect).
  template <typename Token>
  auto bootstrap(Token&& token) {
    return run<void(boost::system::error_code, dht::find_node_result)>(
        std::forward<Token>(token),
        [](dht::dht_node& d, core::time_point now) { return d.bootstrap(now); },
        [](dht::dht_node::operation_done& done) {
          auto* r = std::get_if<dht::find_node_result>(&done.result);
          return r ? *r : dht::find_node_result{detail::error_of(done), {}, {}};
        });
  }

  // After a restart with a data directory: dials the contacts of the saved routing-table
  // snapshot, then bootstraps through those that answered (errc::not_connected if none did).
  template <typename Token>
  auto rejoin(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, dht::find_node_result)>(
        [d = driver_](auto handler) {
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler), work = std::move(work)]() mutable {
            auto shared = std::make_shared<decltype(h)>(std::move(h));
            d->rejoin_from_snapshot([d, shared](std::size_t answered) {
              bootstrap_if_any(d, shared, answered, make_error_code(core::errc::not_connected));
            });
          });
        },
        token);
  }

  // Joins the network through `seeds`, as a first start does: dials each (at once), then looks
  // the node's own id up through those that answered. Fails with the last dial's error when
  // none did, with errc::not_connected for an empty list.
  template <typename Token>
  auto join(std::vector<transports::uri> seeds, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, dht::find_node_result)>(
        [d = driver_](auto handler, std::vector<transports::uri> seeds) {
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, seeds = std::move(seeds), h = std::move(handler),
                                                    work = std::move(work)]() mutable {
            auto shared = std::make_shared<decltype(h)>(std::move(h));
            if (!d->dht()) {  // nothing to join: say so before dialing anyone
              dht::find_node_result off{make_error_code(core::errc::dht_disabled), {}, {}};
              return detail::complete(std::move(*shared), d->any_executor(), off.ec, std::move(off));
            }
            d->dial_all(std::move(seeds), [d, shared](std::size_t answered, boost::system::error_code last) {
              bootstrap_if_any(d, shared, answered, last ? last : make_error_code(core::errc::not_connected));
            });
          });
        },
        token, std::move(seeds));
  }

  // A snapshot of the routing table, bucket by bucket.
  template <typename Token>
  auto buckets(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::vector<dht::bucket_view>)>(
        [d = driver_](auto handler) {
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler)]() mutable {
            std::vector<dht::bucket_view> view;
            if (d->dht()) view = d->dht()->table().buckets();
            detail::complete(std::move(h), d->any_executor(), std::move(view));
          });
        },
        token);
  }

 private:
  // The second half of rejoin and join: a lookup of the node's own id once some contact
  // answered, else `none` at once.
  template <typename Handler>
  static void bootstrap_if_any(const std::shared_ptr<transports::node_driver>& d, std::shared_ptr<Handler> shared,
                               std::size_t answered, boost::system::error_code none) {
    if (answered == 0) {
      dht::find_node_result failed{none, {}, {}};
      return detail::complete(std::move(*shared), d->any_executor(), failed.ec, std::move(failed));
    }
    d->run_dht([](dht::dht_node& n, core::time_point now) { return n.bootstrap(now); },
               [d, shared](dht::dht_node::operation_done& done) {
                 auto* r = std::get_if<dht::find_node_result>(&done.result);
                 auto result = r ? *r : dht::find_node_result{detail::error_of(done), {}, {}};
                 detail::complete(std::move(*shared), d->any_executor(), result.ec, std::move(result));
               });
  }

  // Starts a DHT operation; a cancellation of a type in `honoured` on the handler's slot ends it
  // with operation_aborted (dht_node::abandon). Writes honour terminal and partial only: what
  // they sent may have taken effect.
  template <typename Signature, typename Token, typename Start, typename Convert>
  auto run(Token&& token, Start start, Convert convert,
           boost::asio::cancellation_type honoured = boost::asio::cancellation_type::terminal |
                                                     boost::asio::cancellation_type::partial) {
    return boost::asio::async_initiate<Token, Signature>(
        [d = driver_, start = std::move(start), convert, honoured](auto handler) mutable {
          const std::uint64_t call =
              honoured == boost::asio::cancellation_type::none
                  ? 0
                  : d->cancellable(
                        handler, [](transports::node_driver& n, std::uint64_t id) { n.cancel_dht(id); }, honoured);
          auto work = boost::asio::make_work_guard(
              boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, start = std::move(start), convert, call,
                                                    h = std::move(handler), work = std::move(work)]() mutable {
            auto shared = std::make_shared<decltype(h)>(std::move(h));
            d->run_dht(
                std::move(start),
                [d, shared, convert](dht::dht_node::operation_done& done) mutable {
                  auto result = convert(done);
                  auto ec = result.ec;
                  detail::complete(std::move(*shared), d->any_executor(), ec, std::move(result));
                },
                call);
          });
        },
        token);
  }

  // An operation whose result is `Result`, or (another kind came back) just the error in one.
  template <typename Result, typename Token, typename Start>
  auto run_outcome(Token&& token, Start start) {
    return run<void(boost::system::error_code, Result)>(
        std::forward<Token>(token), std::move(start), [](dht::dht_node::operation_done& done) {
          if (auto* r = std::get_if<Result>(&done.result)) return *r;
          Result failed;
          failed.ec = detail::error_of(done);
          return failed;
        });
  }

  std::shared_ptr<transports::node_driver> driver_;
};

}  // namespace kadnet
