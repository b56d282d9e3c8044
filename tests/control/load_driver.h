// Control-plane load driver: N simulated ranks against a REAL `lockstep coordinator` process over
// loopback. Each rank registers (worker secret), then sends a Heartbeat with its session credential
// every heartbeat interval, as a worker's heartbeat thread does, phases spread over the interval.
// A few client threads multiplex all ranks through gRPC's async API (one CompletionQueue each), and
// each rank has its own channel (its own TCP connection), as real ranks do. Reported: heartbeat
// latency (p50/p99/max, call issued -> reply), the coordinator process's CPU (utime + stime from
// /proc over the measured window), failed calls, and the ranks the launcher would declare lost
// (since_heartbeat_s above the heartbeat timeout in the coordinator's own status).
// With ranks_per_node > 1 the ranks of a node share one connection and their node's leader sends
// one NodeHeartbeat for all of them per interval (per-node aggregation, coordinator.proto).
// Used by tests/control/load_test.cc (quick, asserting) and bench/coordinator_load.cc (the curve).
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <queue>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "launcher/coordinator/client.h"
#include "launcher/coordinator/grpc_util.h"
#include "proto/coordinator.grpc.pb.h"
#include "tests/control/process_util.h"

namespace lockstep::testing {

struct LoadOptions {
  std::string lockstep;      // the `lockstep` binary
  std::string work_dir;      // scratch: job file, run dir, coordinator log
  int ranks = 1024;
  double interval_s = 0.5;   // heartbeat interval (the job's control.heartbeat_interval_s)
  double timeout_s = 10;     // heartbeat timeout: a rank silent this long is lost (control.heartbeat_timeout_s)
  double seconds = 10;       // measured heartbeat window (after registration and one warm-up interval)
  int client_threads = 4;
  int ranks_per_node = 1;    // > 1: one connection and one NodeHeartbeat per node per interval
};

struct LoadResult {
  int ranks = 0;
  int64_t calls = 0;            // heartbeat calls answered OK in the measured window
  double rank_beats_per_s = 0;  // rank heartbeats taken per second (calls x ranks per call)
  int64_t failed = 0;           // heartbeats (and registrations) not OK, whole run
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double calls_per_s = 0;
  double coordinator_cpu = 0;   // coordinator CPU seconds / wall seconds over the window (1 = one core)
  double client_cpu = 0;        // the simulated ranks' (this process's), likewise
  double register_s = 0;        // all ranks registered, wall
  int lost = 0;                 // ranks whose since_heartbeat_s exceeded timeout_s at the end
  double max_since_heartbeat_s = 0;
  int registered = 0;           // as the coordinator's status says
  std::string error;            // set when the run could not be made (coordinator did not start, ...)
};

namespace load_detail {

inline double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> f; ++i) {  // fields 14 and 15 (1-based): utime, stime in ticks
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

inline double self_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

using Clock = std::chrono::steady_clock;

// One client thread: its ranks' calls on its own completion queue.
struct Lane {
  struct Call {
    int slot = 0;
    bool is_register = false;
    Clock::time_point sent;
    grpc::ClientContext ctx;
    proto::RegisterReply reg;
    proto::HeartbeatReply hb;
    proto::NodeHeartbeatReply node;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<proto::RegisterReply>> reg_reader;
    std::unique_ptr<grpc::ClientAsyncResponseReader<proto::HeartbeatReply>> hb_reader;
    std::unique_ptr<grpc::ClientAsyncResponseReader<proto::NodeHeartbeatReply>> node_reader;
  };
  std::vector<int> rank;                                     // slot -> rank
  std::vector<std::shared_ptr<proto::Coordinator::Stub>> stub;  // slot -> its channel's stub
  std::vector<std::string> session;
  std::vector<std::vector<int>> nodes;                      // slots of each node, leader first
  grpc::CompletionQueue cq;
  std::vector<double> latencies_ms;  // measured window only
  int64_t rank_beats = 0;            // measured window only
  int64_t failed = 0;
  std::string first_error;
};

}  // namespace load_detail

inline LoadResult run_load(const LoadOptions& o) {
  using namespace load_detail;
  namespace fs = std::filesystem;
  LoadResult res;
  res.ranks = o.ranks;
  fs::create_directories(o.work_dir);
  const std::string job_path = o.work_dir + "/load.textproto";
  {
    std::ofstream job(job_path);
    // A job any number of ranks may run: the global batch is a multiple of the world size. No data
    // is read: no worker ever starts.
    job << "name: \"control-load\"\nmodel { reference: \"fmnist-mlp\" }\n"
        << "data { dir: \"/usr/share/datasets/fashion-mnist\" }\noptimizer { lr: 0.05 sgd { momentum: 0.9 } }\n"
        << "seed: 1\nepochs: 1\nbatch_size: " << o.ranks * 4 << "\n"
        << "control { heartbeat_interval_s: " << o.interval_s << " heartbeat_timeout_s: " << o.timeout_s << " }\n";
  }
  const std::string run_dir = o.work_dir + "/run";
  fs::remove_all(run_dir);
  ChildProcess coord({o.lockstep, "coordinator", job_path, "-n", std::to_string(o.ranks), "--run-dir", run_dir},
                     o.work_dir + "/coordinator.log");
  if (!coord.wait_for_output("coordinator listening on", 30)) {
    res.error = "the coordinator did not start: " + coord.output();
    return res;
  }
  std::smatch m;
  const std::string out = coord.output();
  if (!std::regex_search(out, m, std::regex("listening on (\\S+) "))) {
    res.error = "no address in the coordinator's output: " + out;
    return res;
  }
  const std::string address = m[1];
  const std::string secret = read_all(run_dir + "/worker_secret");
  const std::string token = read_all(run_dir + "/token");

  // Channels: one per node (per rank unless ranks_per_node > 1); a local subchannel pool so that
  // each really is its own connection.
  const int lanes_n = std::max(1, o.client_threads);
  std::vector<std::unique_ptr<Lane>> lanes;
  for (int i = 0; i < lanes_n; ++i) lanes.push_back(std::make_unique<Lane>());
  std::shared_ptr<proto::Coordinator::Stub> node_stub;
  const int per_node = std::max(1, o.ranks_per_node);
  for (int r = 0; r < o.ranks; ++r) {
    Lane& l = *lanes[static_cast<size_t>(r / per_node % lanes_n)];  // a node's ranks in one lane
    if (r % per_node == 0) {
      l.nodes.emplace_back();
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      node_stub = proto::Coordinator::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    }
    l.nodes.back().push_back(static_cast<int>(l.rank.size()));
    l.rank.push_back(r);
    l.stub.push_back(node_stub);
    l.session.emplace_back();
  }

  const auto deadline_of = [&](double s) {
    return std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  };
  const auto t_register = Clock::now();
  std::atomic<bool> register_failed{false};
  // Phase 1: every rank registers (all at once, as mpirun starts them).
  auto register_lane = [&](Lane& l) {
    for (size_t s = 0; s < l.rank.size(); ++s) {
      auto* c = new Lane::Call;
      c->slot = static_cast<int>(s);
      c->is_register = true;
      c->ctx.AddMetadata(grpc_util::kTokenKey, secret);
      c->ctx.set_deadline(deadline_of(30));
      c->ctx.set_wait_for_ready(true);  // a connection still being made: wait, as the worker's client retries
      proto::RegisterRequest req;
      req.set_rank(l.rank[s]);
      req.set_world_size(o.ranks);
      req.set_host("node" + std::to_string(l.rank[s] / std::max(1, o.ranks_per_node)));
      req.set_pid(100000 + l.rank[s]);
      req.set_nonce("load-" + std::to_string(l.rank[s]));
      c->reg_reader = l.stub[s]->AsyncRegister(&c->ctx, req, &l.cq);
      c->reg_reader->Finish(&c->reg, &c->status, c);
    }
    for (size_t done = 0; done < l.rank.size(); ++done) {
      void* tag;
      bool ok;
      if (!l.cq.Next(&tag, &ok)) break;
      std::unique_ptr<Lane::Call> c(static_cast<Lane::Call*>(tag));
      if (c->status.ok()) l.session[static_cast<size_t>(c->slot)] = c->reg.session();
      else {
        ++l.failed;
        if (l.first_error.empty()) l.first_error = "Register: " + grpc_util::status_text(c->status);
        register_failed = true;
      }
    }
  };
  {
    std::vector<std::thread> ts;
    for (auto& l : lanes) ts.emplace_back(register_lane, std::ref(*l));
    for (auto& t : ts) t.join();
  }
  res.register_s = std::chrono::duration<double>(Clock::now() - t_register).count();
  if (register_failed) {
    for (auto& l : lanes) res.failed += l->failed;
    res.error = lanes[0]->first_error.empty() ? "a registration failed" : lanes[0]->first_error;
    for (auto& l : lanes)
      if (!l->first_error.empty()) res.error = l->first_error;
    return res;
  }

  // Phase 2: heartbeats. Each rank's first one at a random phase of the interval; then every
  // interval after its previous one was due (a worker's timer), one warm-up interval unmeasured.
  const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.interval_s));
  const auto t0 = Clock::now();
  const auto measure_from = t0 + interval;
  const auto measure_to = measure_from + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(o.seconds));
  double cpu0 = 0, self0 = 0;
  std::atomic<bool> cpu_taken{false};
  auto heartbeat_lane = [&](Lane& l, unsigned seed) {
    using Due = std::pair<Clock::time_point, int>;
    std::priority_queue<Due, std::vector<Due>, std::greater<>> due;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> phase(0, o.interval_s);
    for (size_t s = 0; s < l.nodes.size(); ++s)
      due.push({t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(phase(rng))),
                static_cast<int>(s)});
    int64_t step = 0;
    int inflight = 0;
    for (;;) {
      const auto now = Clock::now();
      if (now >= measure_from && !cpu_taken.exchange(true)) {
        cpu0 = cpu_seconds(coord.pid());
        self0 = self_cpu_seconds();
      }
      while (!due.empty() && due.top().first <= now) {
        const auto [when, s] = due.top();
        due.pop();
        if (when < measure_to) due.push({when + interval, s});
        auto* c = new Lane::Call;
        c->slot = s;
        c->sent = Clock::now();
        const std::vector<int>& node = l.nodes[static_cast<size_t>(s)];
        const size_t lead = static_cast<size_t>(node[0]);
        c->ctx.AddMetadata(grpc_util::kTokenKey, l.session[lead]);
        c->ctx.set_deadline(deadline_of(std::max(0.05, o.timeout_s / 2)));  // as the worker's client
        auto heartbeat_of = [&](proto::HeartbeatRequest& req, size_t slot) {
          req.set_rank(l.rank[slot]);
          proto::StepMetrics& mt = *req.mutable_metrics();
          mt.set_epoch(1);
          mt.set_step(++step);
          mt.set_steps_per_epoch(1000000);
          mt.set_step_time_s(0.1);
          mt.set_loss(1.0);
        };
        if (node.size() == 1) {
          proto::HeartbeatRequest req;
          heartbeat_of(req, lead);
          c->hb_reader = l.stub[lead]->AsyncHeartbeat(&c->ctx, req, &l.cq);
          c->hb_reader->Finish(&c->hb, &c->status, c);
        } else {
          proto::NodeHeartbeatRequest req;
          req.set_rank(l.rank[lead]);
          for (int slot : node) {
            proto::HeartbeatRequest& e = *req.add_ranks();
            heartbeat_of(e, static_cast<size_t>(slot));
            e.set_session(l.session[static_cast<size_t>(slot)]);
          }
          c->node_reader = l.stub[lead]->AsyncNodeHeartbeat(&c->ctx, req, &l.cq);
          c->node_reader->Finish(&c->node, &c->status, c);
        }
        ++inflight;
      }
      if (due.empty() && inflight == 0) break;
      void* tag;
      bool ok;
      const auto wake = due.empty() ? Clock::now() + std::chrono::seconds(30) : due.top().first;
      const auto st = l.cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + (wake - Clock::now()));
      if (st == grpc::CompletionQueue::SHUTDOWN) break;
      if (st == grpc::CompletionQueue::TIMEOUT) continue;
      std::unique_ptr<Lane::Call> c(static_cast<Lane::Call*>(tag));
      --inflight;
      const auto got = Clock::now();
      if (!c->status.ok() || c->node.refused_size() > 0) {
        ++l.failed;
        if (l.first_error.empty())
          l.first_error = c->status.ok() ? "NodeHeartbeat refused rank " + std::to_string(c->node.refused(0).rank()) +
                                               ": " + c->node.refused(0).why()
                                         : "Heartbeat: " + grpc_util::status_text(c->status);
      } else if (c->sent >= measure_from && c->sent < measure_to) {
        l.latencies_ms.push_back(std::chrono::duration<double, std::milli>(got - c->sent).count());
        l.rank_beats += static_cast<int64_t>(l.nodes[static_cast<size_t>(c->slot)].size());
      }
    }
  };
  {
    std::vector<std::thread> ts;
    for (size_t i = 0; i < lanes.size(); ++i) ts.emplace_back(heartbeat_lane, std::ref(*lanes[i]), 17u + i);
    for (auto& t : ts) t.join();
  }
  const double wall = std::chrono::duration<double>(Clock::now() - measure_from).count();
  res.coordinator_cpu = (cpu_seconds(coord.pid()) - cpu0) / wall;
  res.client_cpu = (self_cpu_seconds() - self0) / wall;

  std::vector<double> all;
  for (auto& l : lanes) {
    all.insert(all.end(), l->latencies_ms.begin(), l->latencies_ms.end());
    res.failed += l->failed;
    res.rank_beats_per_s += static_cast<double>(l->rank_beats) / o.seconds;
    if (res.error.empty() && !l->first_error.empty()) res.error = l->first_error;
  }
  std::sort(all.begin(), all.end());
  res.calls = static_cast<int64_t>(all.size());
  res.calls_per_s = static_cast<double>(all.size()) / o.seconds;
  if (!all.empty()) {
    res.p50_ms = all[all.size() / 2];
    res.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    res.max_ms = all.back();
  }

  // What the launcher's supervisor would see: any rank silent past the timeout is lost.
  ClientOptions co;
  co.address = address;
  co.token = token;
  co.rpc_deadline_s = 30;
  CoordinatorClient ctl(co);
  const proto::JobStatus st = ctl.control(proto::ControlRequest::STATUS).status();
  res.registered = st.registered();
  for (const proto::RankStatus& r : st.ranks()) {
    res.max_since_heartbeat_s = std::max(res.max_since_heartbeat_s, r.since_heartbeat_s());
    if (r.since_heartbeat_s() > o.timeout_s) ++res.lost;
  }
  return res;
}

inline std::string load_row(const LoadResult& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%6d %9.0f %9.0f %8.2f %8.2f %8.2f %8.1f%% %8.1f%% %7lld %5d %9.2f", r.ranks,
                r.rank_beats_per_s, r.calls_per_s,
                r.p50_ms, r.p99_ms, r.max_ms, 100 * r.coordinator_cpu, 100 * r.client_cpu, static_cast<long long>(r.failed), r.lost,
                r.register_s);
  return buf;
}

inline std::string load_header() {
  return " ranks  beats/s    calls/s  p50(ms)  p99(ms)  max(ms)  coordCPU clientCPU  failed  lost  reg_s(all)";
}

}  // namespace lockstep::testing
