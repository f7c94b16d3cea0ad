// Promise.withResolvers polyfill (ES2024, native from Node 22).
//
// Why: every js-libp2p release npm resolves today calls Promise.withResolvers();
// on Node 20 every noise handshake would fail with "Promise.withResolvers is not
// a function". This module has no imports and must be the FIRST import of
// peer.mjs so it runs before any libp2p module is evaluated.
//
// Spec-equivalent (ECMA-262 27.2.4.8): uses `this` as the constructor
// (NewPromiseCapability(C)), so subclasses work and a non-constructor `this`
// throws TypeError; the property is writable, configurable, non-enumerable,
// with length 0 and name "withResolvers", like the native one.
if (typeof Promise.withResolvers !== 'function') {
  const withResolvers = {
    withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  }.withResolvers
  Object.defineProperty(Promise, 'withResolvers', {
    value: withResolvers,
    writable: true,
    enumerable: false,
    configurable: true
  })
}
