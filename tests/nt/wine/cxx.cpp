// C++ exceptions (SEH-based unwinding in the x64 mingw runtime): throw, catch by type, rethrow,
// destructors run during unwinding, an exception crossing a function that holds XMM values.
#include <cstdio>
#include <stdexcept>
#include <string>

static int destroyed;

struct Guard {
    int id;
    explicit Guard(int i) : id(i) {}
    ~Guard() { destroyed += id; }
};

[[gnu::noinline]] static double thrower(int depth, double x)
{
    Guard g(depth);
    if (depth == 0)
        throw std::runtime_error("bottom reached at " + std::to_string(x));
    return thrower(depth - 1, x * 1.5) + 1.0;
}

int main()
{
    int caught = 0;
    for (int round = 0; round < 3; round++) {
        volatile double keep = 2.25 * (round + 1);  // lives across the throw
        try {
            thrower(5, 1.0);
        } catch (const std::exception &e) {
            std::printf("round %d caught: %s, keep %.2f\n", round, e.what(), (double)keep);
            caught++;
        }
    }
    try {
        try {
            throw 42;
        } catch (int v) {
            std::printf("inner caught %d, rethrowing\n", v);
            throw;
        }
    } catch (int v) {
        std::printf("outer caught %d\n", v);
        caught++;
    }
    try {
        throw std::string("a string");
    } catch (const char *) {
        std::printf("wrong handler\n");
    } catch (const std::string &s) {
        std::printf("caught std::string: %s\n", s.c_str());
        caught++;
    }
    std::printf("destructors ran: %d\n", destroyed);
    return caught;
}
