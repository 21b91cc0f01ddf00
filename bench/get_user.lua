-- GET /users/{id} over ids 1..10000, pseudo-random per request.
math.randomseed(42)
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, 10000))
end
