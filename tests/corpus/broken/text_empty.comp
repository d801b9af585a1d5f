# expect: 1:1 the spec is empty

# only comments
