# expect: 2:14 number out of range: 1e999
train { lr = 1e999 }
