// CollectiveQueue: fingerprint, check and enqueue of one collective, shared by the threaded backends.
#include "comm/collective_queue.h"

#include <string>
#include <utility>

namespace lockstep {

Fingerprint QueuedCommunicator::issue(Fingerprint fp) {
  fp.seq = next_seq();
  fp.phase = phase();
  fp.mode = mode();
  return fp;
}

// A transport call stuck for two timeouts plus slack means a rank died mid-collective.
CollectiveQueue::CollectiveQueue(CommOptions options, Check check)
    : options_(options),
      check_(std::move(check)),
      thread_(2 * options.timeout + std::chrono::seconds(10)) {}

Work CollectiveQueue::submit(const Fingerprint& fp, std::function<void()> move) {
  // The task copies what it needs: a stuck (detached) thread may outlive this queue.
  return thread_.submit("collective #" + std::to_string(fp.seq) + " " + describe(fp),
                        [fp, options = options_, check = check_, move = std::move(move)] {
                          if (options.check_fingerprints) check(fp, options.timeout);
                          move();
                        },
                        take_trace_tag());  // Note [collective tag]: the caller's, for this collective
}

}  // namespace lockstep
