"""Your solution: make count_inversions fast. Keep its name, its argument and its answers."""


def count_inversions(values):
    """Returns the number of pairs (i, j) with i < j and values[i] > values[j].

    values is a list of integers; it must not be modified.
    """
    count = 0
    n = len(values)
    for i in range(n):
        for j in range(i + 1, n):
            if values[i] > values[j]:
                count += 1
    return count
