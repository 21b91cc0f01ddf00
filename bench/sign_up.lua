-- POST /users/ with a new email every time (argon2 hashing on every request).
local counter = 0
local prefix = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
local headers = { ["Content-Type"] = "application/json" }
request = function()
  counter = counter + 1
  local body = string.format(
    '{"email": "bench-%s-%d@example.com", "password": "benchmark password"}', prefix, counter)
  return wrk.format("POST", "/users/", headers, body)
end
