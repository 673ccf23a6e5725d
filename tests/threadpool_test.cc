// threadpool_test.cc - threadpool/ through tp.h: talent-plan project 4's
// pool tests for both kinds, jobs that end their own thread, shutdown
// (queued jobs run, every thread joined, later spawns refused), long-lived
// jobs, thread names and argument checks.
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tp.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Every wait in this file gives up after this long.
constexpr auto kDeadline = 30s;

// Poll pred until it holds or `limit` passes; returns whether it held.
template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = kDeadline) {
  auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The names (comm) of the process's threads, from /proc/self/task.
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  DIR* d = opendir("/proc/self/task");
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string n;
    std::getline(f, n);
    names.push_back(n);  // a thread that just ended leaves an empty name
  }
  closedir(d);
  return names;
}

size_t TaskCount() { return ThreadNames().size(); }

// The thread count once it has stopped changing: a thread joined by an
// earlier test can stay listed for a moment after pthread_join returns (the
// kernel wakes the joiner before it has finished removing the thread).
size_t SettledTaskCount() {
  size_t n = TaskCount();
  int same = 0;
  auto end = Clock::now() + kDeadline;
  while (same < 5 && Clock::now() < end) {
    std::this_thread::sleep_for(2ms);
    size_t m = TaskCount();
    same = m == n ? same + 1 : 0;
    n = m;
  }
  return n;
}

// Threads named "<prefix>-<number>".
std::multiset<std::string> PoolThreads(const std::string& prefix) {
  std::multiset<std::string> s;
  for (const auto& n : ThreadNames())
    if (n.compare(0, prefix.size() + 1, prefix + "-") == 0) s.insert(n);
  return s;
}

// ---- jobs ----

void AddOne(void* arg) { static_cast<std::atomic<long>*>(arg)->fetch_add(1); }

// talent-plan's counter job: one atomic add per unit, 1000 of them.
void AddThousand(void* arg) {
  auto* c = static_cast<std::atomic<long>*>(arg);
  for (int i = 0; i < 1000; i++) c->fetch_add(1);
}

// C's analogue of talent-plan's panicking job: it ends its own thread.
// Its frame has locals with sanitizer redzones, abandoned by the exit.
void CountThenExitThread(void* arg) {
  volatile char scratch[64];
  std::string s(100, 'x');  // a destructor the exit's unwinding runs
  for (size_t i = 0; i < sizeof scratch; i++) scratch[i] = s[i];
  static_cast<std::atomic<long>*>(arg)->fetch_add(scratch[5] == 'x');
  pthread_exit(nullptr);
}

// Spawn `n` jobs of fn(arg), expecting every spawn to be accepted.
void SpawnN(tp_pool* p, int n, void (*fn)(void*), void* arg) {
  for (int i = 0; i < n; i++) ASSERT_EQ(tp_spawn(p, fn, arg), TP_OK) << "job " << i;
}

// A job that holds its thread until released (or the deadline passes).
struct Gate {
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  std::atomic<bool> open{false};
  static void Job(void* arg) {
    auto* g = static_cast<Gate*>(arg);
    g->started.fetch_add(1);
    WaitFor([g] { return g->open.load(); });
    g->finished.fetch_add(1);
  }
};

// Owns a pool: shuts it down when the test ends, even after a failed ASSERT
// (every job in this file ends by itself within kDeadline).
class Pool {
 public:
  Pool(tp_kind kind, unsigned n, const char* name) {
    int rc = tp_pool_new(kind, n, name, &p_);
    EXPECT_EQ(rc, TP_OK) << tp_strerror(rc);
  }
  ~Pool() { Shutdown(); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  void Shutdown() {
    tp_pool_shutdown(p_);
    p_ = nullptr;
  }
  tp_pool* get() const { return p_; }

 private:
  tp_pool* p_ = nullptr;
};

class ThreadPoolKinds : public ::testing::TestWithParam<tp_kind> {
 protected:
  bool Fixed() const { return GetParam() == TP_SHARED_QUEUE; }
};

INSTANTIATE_TEST_SUITE_P(ThreadPool, ThreadPoolKinds,
                         ::testing::Values(TP_NAIVE, TP_SHARED_QUEUE),
                         [](const ::testing::TestParamInfo<tp_kind>& i) {
                           return std::string(i.param == TP_NAIVE ? "Naive" : "SharedQueue");
                         });

// talent-plan: 20 jobs of 1000 increments on 4 threads make 20000.
TEST_P(ThreadPoolKinds, CounterReaches20000) {
  std::atomic<long> counter{0};
  Pool pool(GetParam(), 4, "tptest");
  tp_pool* p = pool.get();
  ASSERT_NE(p, nullptr);
  SpawnN(p, 20, AddThousand, &counter);
  pool.Shutdown();
  EXPECT_EQ(counter.load(), 20000);
}

// talent-plan's panic test: 1000 jobs end their threads; the fixed pool
// replaces each one, keeps 4 threads and still runs the counter jobs.
TEST_P(ThreadPoolKinds, JobsEndingTheirThreadDoNotShrinkPool) {
  const size_t before = SettledTaskCount();
  std::atomic<long> exited{0}, counter{0};
  Pool pool(GetParam(), 4, "tpexit");
  tp_pool* p = pool.get();
  ASSERT_NE(p, nullptr);
  SpawnN(p, 1000, CountThenExitThread, &exited);
  ASSERT_TRUE(WaitFor([&] { return exited.load() == 1000; })) << exited.load();

  if (Fixed()) {
    EXPECT_EQ(tp_pool_threads(p), 4u);
    // Every ended thread was joined by its replacement: exactly the four
    // slots' threads remain, with their original names.
    std::multiset<std::string> want{"tpexit-0", "tpexit-1", "tpexit-2", "tpexit-3"};
    EXPECT_TRUE(WaitFor([&] { return PoolThreads("tpexit") == want; }))
        << PoolThreads("tpexit").size() << " pool threads";
  } else {
    EXPECT_TRUE(WaitFor([&] { return tp_pool_threads(p) == 0; })) << tp_pool_threads(p);
  }

  SpawnN(p, 20, AddThousand, &counter);
  EXPECT_TRUE(WaitFor([&] { return counter.load() == 20000; })) << counter.load();
  if (Fixed()) {
    EXPECT_EQ(tp_pool_threads(p), 4u);
  }
  pool.Shutdown();
  EXPECT_EQ(counter.load(), 20000);
  EXPECT_EQ(exited.load(), 1000);
  EXPECT_TRUE(WaitFor([&] { return TaskCount() == before; }))
      << "threads before " << before << ", after " << TaskCount();
}

// Shutdown joins every thread it created (ASan/LSan would report a leaked
// thread or pool; /proc/self/task shows the threads themselves).  Thread
// ends are asynchronous in the kernel even after a join, hence the wait.
TEST_P(ThreadPoolKinds, ShutdownJoinsEveryThread) {
  const size_t before = SettledTaskCount();
  std::atomic<long> counter{0}, exited{0};
  Pool pool(GetParam(), 4, "tpjoin");
  tp_pool* p = pool.get();
  ASSERT_NE(p, nullptr);
  if (Fixed()) {
    EXPECT_EQ(tp_pool_threads(p), 4u);
    // Each worker names itself as it starts.
    EXPECT_TRUE(WaitFor([] { return PoolThreads("tpjoin").size() == 4; }));
  }
  SpawnN(p, 50, AddOne, &counter);
  SpawnN(p, 10, CountThenExitThread, &exited);
  SpawnN(p, 50, AddOne, &counter);
  pool.Shutdown();
  EXPECT_EQ(counter.load(), 100);
  EXPECT_EQ(exited.load(), 10);
  EXPECT_TRUE(WaitFor([&] { return TaskCount() == before; }))
      << "threads before " << before << ", after " << TaskCount();
  EXPECT_TRUE(PoolThreads("tpjoin").empty());
}

// A pool with nothing to do shuts down at once, and a pool can be made and
// shut down many times without leaking threads.
TEST_P(ThreadPoolKinds, CreateAndShutdownRepeatedly) {
  const size_t before = SettledTaskCount();
  for (int i = 0; i < 50; i++) {
    Pool pool(GetParam(), 3, "tptest");
    ASSERT_NE(pool.get(), nullptr);
  }
  EXPECT_TRUE(WaitFor([&] { return TaskCount() == before; }));
}

// Jobs still queued when shutdown begins run before it returns; tp_spawn
// fails with TP_ESHUTDOWN once shutdown has begun.  A job keeps the only
// worker busy, spawning no-op jobs until it sees TP_ESHUTDOWN.
struct ShutdownProbe {
  tp_pool* pool = nullptr;
  std::atomic<long> queued_ran{0};   // the jobs queued behind the probe
  std::atomic<long> noops_ran{0};
  std::atomic<long> noops_accepted{0};
  std::atomic<long> queued_ran_at_refusal{-1};
  std::atomic<int> refusal{TP_OK};
  static void Job(void* arg) {
    auto* s = static_cast<ShutdownProbe*>(arg);
    auto end = Clock::now() + kDeadline;
    while (Clock::now() < end) {
      int rc = tp_spawn(s->pool, AddOne, &s->noops_ran);
      if (rc == TP_OK) {
        s->noops_accepted.fetch_add(1);
      } else {
        s->queued_ran_at_refusal.store(s->queued_ran.load());
        s->refusal.store(rc);
        return;
      }
      std::this_thread::sleep_for(1ms);
    }
  }
};

TEST_P(ThreadPoolKinds, ShutdownRunsQueuedJobsAndRefusesNewOnes) {
  ShutdownProbe s;
  Pool pool(GetParam(), 1, "tptest");
  s.pool = pool.get();
  ASSERT_NE(s.pool, nullptr);
  ASSERT_EQ(tp_spawn(s.pool, ShutdownProbe::Job, &s), TP_OK);
  SpawnN(s.pool, 100, AddOne, &s.queued_ran);
  pool.Shutdown();

  EXPECT_EQ(s.refusal.load(), TP_ESHUTDOWN) << "the probe never saw the shutdown";
  EXPECT_EQ(s.queued_ran.load(), 100);
  EXPECT_EQ(s.noops_ran.load(), s.noops_accepted.load());
  // On the one-thread queue pool the 100 jobs were still queued behind the
  // probe when shutdown began, and ran after.
  if (Fixed()) {
    EXPECT_EQ(s.queued_ran_at_refusal.load(), 0);
  }
}

// The server's use: N event loops as N jobs of an N-thread pool, each
// running until told to stop.  All N run at once.
TEST_P(ThreadPoolKinds, LongLivedJobsRunConcurrently) {
  const unsigned n = 4;
  Gate g;
  std::atomic<long> later{0};
  Pool pool(GetParam(), n, "tptest");
  tp_pool* p = pool.get();
  ASSERT_NE(p, nullptr);
  SpawnN(p, n, Gate::Job, &g);
  EXPECT_TRUE(WaitFor([&] { return g.started.load() == static_cast<int>(n); }))
      << g.started.load() << " of " << n << " started";
  EXPECT_EQ(g.finished.load(), 0);

  // With every worker busy a further job waits in the queue...
  ASSERT_EQ(tp_spawn(p, AddOne, &later), TP_OK);
  if (Fixed()) {
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(later.load(), 0);
    EXPECT_EQ(tp_pool_threads(p), n);
  }
  // ...and runs once a worker is free.
  g.open.store(true);
  EXPECT_TRUE(WaitFor([&] { return later.load() == 1; }));
  pool.Shutdown();
  EXPECT_EQ(g.finished.load(), static_cast<int>(n));
}

// Jobs may spawn jobs on their own pool.
struct Nested {
  tp_pool* pool;
  std::atomic<long> counter{0};
  std::atomic<int> failures{0};
  static void Job(void* arg) {
    auto* s = static_cast<Nested*>(arg);
    for (int i = 0; i < 10; i++)
      if (tp_spawn(s->pool, AddThousand, &s->counter) != TP_OK) s->failures.fetch_add(1);
  }
};

TEST_P(ThreadPoolKinds, JobsSpawnJobs) {
  Nested s;
  Pool pool(GetParam(), 2, "tptest");
  s.pool = pool.get();
  ASSERT_NE(s.pool, nullptr);
  SpawnN(s.pool, 5, Nested::Job, &s);
  // The nested spawns may race with shutdown's start; wait for them first.
  EXPECT_TRUE(WaitFor([&] { return s.counter.load() == 50000; })) << s.counter.load();
  pool.Shutdown();
  EXPECT_EQ(s.failures.load(), 0);
  EXPECT_EQ(s.counter.load(), 50000);
}

// A job cancelled from outside (at a cancellation point inside the job) ends
// its thread like pthread_exit does; the fixed pool replaces it.
struct Cancellable {
  std::atomic<bool> have_tid{false};
  pthread_t tid{};
  std::atomic<int> ended_by_deadline{0};
  static void Job(void* arg) {
    auto* c = static_cast<Cancellable*>(arg);
    c->tid = pthread_self();
    c->have_tid.store(true);
    auto end = Clock::now() + kDeadline;
    // The only cancellation point is pthread_testcancel: ThreadSanitizer
    // loses track of a thread cancelled inside one of its interceptors
    // (usleep, nanosleep...), which are compiled without unwind cleanups.
    while (Clock::now() < end) {
      pthread_testcancel();
      sched_yield();
    }
    c->ended_by_deadline.fetch_add(1);
  }
};

TEST_P(ThreadPoolKinds, CancelledJobIsReplaced) {
  const size_t before = SettledTaskCount();
  Cancellable c;
  std::atomic<long> counter{0};
  Pool pool(GetParam(), 2, "tpcancel");
  tp_pool* p = pool.get();
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(tp_spawn(p, Cancellable::Job, &c), TP_OK);
  ASSERT_TRUE(WaitFor([&] { return c.have_tid.load(); }));
  ASSERT_EQ(pthread_cancel(c.tid), 0);
  SpawnN(p, 20, AddThousand, &counter);
  EXPECT_TRUE(WaitFor([&] { return counter.load() == 20000; }));
  if (Fixed()) {
    std::multiset<std::string> want{"tpcancel-0", "tpcancel-1"};
    EXPECT_TRUE(WaitFor([&] { return PoolThreads("tpcancel") == want; }));
    EXPECT_EQ(tp_pool_threads(p), 2u);
  }
  pool.Shutdown();
  EXPECT_EQ(c.ended_by_deadline.load(), 0);
  EXPECT_TRUE(WaitFor([&] { return TaskCount() == before; }));
}

// Pool threads start with signals blocked, so process signals go elsewhere.
struct MaskProbe {
  std::atomic<int> blocked{-1};
  static void Job(void* arg) {
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, nullptr, &cur);
    static_cast<MaskProbe*>(arg)->blocked.store(sigismember(&cur, SIGTERM) == 1 &&
                                                sigismember(&cur, SIGINT) == 1);
  }
};

TEST_P(ThreadPoolKinds, PoolThreadsBlockSignals) {
  MaskProbe m;
  Pool pool(GetParam(), 1, "tptest");
  tp_pool* p = pool.get();
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(tp_spawn(p, MaskProbe::Job, &m), TP_OK);
  pool.Shutdown();
  EXPECT_EQ(m.blocked.load(), 1);
}

// ---- not per kind ----

TEST(ThreadPool, ThreadsAreNamedBySlot) {
  {
    Pool pool(TP_SHARED_QUEUE, 3, "tpname");
    std::multiset<std::string> want{"tpname-0", "tpname-1", "tpname-2"};
    EXPECT_TRUE(WaitFor([&] { return PoolThreads("tpname") == want; }));
  }
  {
    // A long prefix is shortened so the number survives the 15-byte limit.
    Pool pool(TP_SHARED_QUEUE, 12, "averyverylongpoolname");
    EXPECT_TRUE(WaitFor([] { return PoolThreads("averyverylon").count("averyverylon-11") == 1; }));
    EXPECT_TRUE(WaitFor([] { return PoolThreads("averyverylong").count("averyverylong-0") == 1; }));
  }
  {
    // NULL or empty: "tp".
    Pool pool(TP_SHARED_QUEUE, 1, nullptr);
    EXPECT_TRUE(WaitFor([] { return PoolThreads("tp").count("tp-0") == 1; }));
  }
}

TEST(ThreadPool, BadArgumentsAreRejected) {
  tp_pool* p = nullptr;
  EXPECT_EQ(tp_pool_new(TP_SHARED_QUEUE, 0, "x", &p), TP_EINVAL);
  EXPECT_EQ(tp_pool_new(TP_NAIVE, 0, "x", &p), TP_EINVAL);
  EXPECT_EQ(tp_pool_new(TP_SHARED_QUEUE, TP_MAX_THREADS + 1, "x", &p), TP_EINVAL);
  EXPECT_EQ(tp_pool_new(static_cast<tp_kind>(7), 4, "x", &p), TP_EINVAL);
  EXPECT_EQ(tp_pool_new(TP_SHARED_QUEUE, 4, "x", nullptr), TP_EINVAL);
  EXPECT_EQ(p, nullptr);

  std::atomic<long> counter{0};
  EXPECT_EQ(tp_spawn(nullptr, AddOne, &counter), TP_EINVAL);
  for (tp_kind k : {TP_NAIVE, TP_SHARED_QUEUE}) {
    Pool pool(k, 2, "x");
    ASSERT_NE(pool.get(), nullptr);
    EXPECT_EQ(tp_spawn(pool.get(), nullptr, &counter), TP_EINVAL);
    EXPECT_EQ(tp_spawn(pool.get(), AddOne, &counter), TP_OK);
  }
  EXPECT_EQ(counter.load(), 2);
  tp_pool_shutdown(nullptr);  // does nothing
  EXPECT_EQ(tp_pool_threads(nullptr), 0u);
}

TEST(ThreadPool, ErrorCodesHaveDistinctMessages) {
  std::set<std::string> seen;
  for (int c : {TP_OK, TP_EINVAL, TP_ENOMEM, TP_EAGAIN, TP_ESHUTDOWN}) {
    ASSERT_NE(tp_strerror(c), nullptr);
    EXPECT_TRUE(seen.insert(tp_strerror(c)).second) << c;
  }
  EXPECT_TRUE(seen.insert(tp_strerror(-1000)).second);
}

}  // namespace
